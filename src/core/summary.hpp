#pragma once
#include "guard.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "types.hpp"

namespace leadscore {

// One rule's occurrences in a summary.
struct RuleOccurrences {
    std::int64_t rule_id = 0;
    std::vector<Timestamp> times;  // sorted once the summary is read
};

// The occurrences of a model's activity rules for one lead (or one aggregate group):
// rule id -> timestamps. It is a multiset, so the same rows always give the same summary,
// whether built at once, incrementally, or merged from parallel workers.
// Rules are kept in a vector sorted by id (a lead has a handful): one allocation per rule.
class Summary {
public:
    void add(std::int64_t rule_id, Timestamp t);
    // Removes one occurrence; false when it is not there, or when occurrences were dropped
    // (marked exact from some time): the caller rebuilds from raw rows.
    bool remove(std::int64_t rule_id, Timestamp t);
    void merge(const Summary& other);
    void clear() {
        rules_.clear();
        exact_from_ = kTimestampMin;
    }
    bool empty() const { return rules_.empty(); }
    std::size_t occurrence_count() const;

    // Rules with occurrences, ascending by id, each with its times sorted.
    const std::vector<RuleOccurrences>& rules() const {
        normalize();
        return rules_;
    }
    // Sorted timestamps of one rule (empty when none).
    const std::vector<Timestamp>& occurrences(std::int64_t rule_id) const;
    std::vector<std::int64_t> rule_ids() const;

    // Drops, for each rule, the `drop(rule)` oldest of its occurrences; true when any went.
    template <class F>
    bool drop_oldest(F&& drop) {
        normalize();
        bool dropped = false;
        std::size_t out = 0;
        for (std::size_t i = 0; i < rules_.size(); i++) {
            RuleOccurrences& r = rules_[i];
            const std::size_t n = std::min(drop(static_cast<const RuleOccurrences&>(r)), r.times.size());
            if (n > 0) {
                dropped = true;
                r.times.erase(r.times.begin(), r.times.begin() + static_cast<std::ptrdiff_t>(n));
            }
            if (r.times.empty()) continue;
            if (out != i) rules_[out] = std::move(r);
            out++;
        }
        rules_.resize(out);
        return dropped;
    }
    // Occurrences that can no longer count from `t` on may have been dropped: results are
    // exact only as of `t` or later (the mark only moves forward).
    void mark_exact_from(Timestamp t);
    Timestamp exact_from() const { return exact_from_; }
    bool exact_at(Timestamp as_of) const { return as_of >= exact_from_; }

    // Compact binary form: version byte (2 when marked: then the exact-from time), then per
    // rule its id and delta-encoded times.
    std::string serialize() const;
    // Throws UserError (data corrupted) on malformed input.
    static Summary deserialize(const unsigned char* data, std::size_t len);

    // Same occurrences; the exact-from mark is not compared.
    bool operator==(const Summary& o) const;

private:
    void normalize() const;
    std::vector<RuleOccurrences>::iterator find(std::int64_t rule_id);
    std::vector<RuleOccurrences>::const_iterator find(std::int64_t rule_id) const;
    // The rule's entry, created (empty) in id order when missing.
    RuleOccurrences& entry(std::int64_t rule_id);
    mutable std::vector<RuleOccurrences> rules_;
    mutable bool sorted_ = true;
    Timestamp exact_from_ = kTimestampMin;
};

}  // namespace leadscore
