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
    // A multiply_by rule's points of each occurrence, round(points x value, 6) (same order as
    // times; empty otherwise): equal times are ordered by them.
    std::vector<MicroPoints> values;

    // A time-pattern rule's entry, once pruned: whether each occurrence before decided_until
    // counts is settled. `decided` holds the counted ones that can still matter (by time),
    // decided_count those that only add to a count, and `times` keeps only the occurrences a
    // later one's window needs (earlier: how many older ones were dropped, for "ever").
    Timestamp decided_until = kTimestampMin;
    std::vector<Timestamp> decided;
    std::int64_t decided_count = 0;
    std::int64_t earlier = 0;

    bool has_decisions() const { return decided_until != kTimestampMin; }
    bool empty() const { return times.empty() && !has_decisions(); }
};

// The occurrences of a model's activity rules for one lead (or one aggregate group):
// rule id -> timestamps. It is a multiset, so the same rows always give the same summary,
// whether built at once, incrementally, or merged from parallel workers.
// Rules are kept in a vector sorted by id (a lead has a handful): one allocation per rule.
class Summary {
public:
    // value: the occurrence's multiply_by value, or kNoValue. A rule's occurrences either all
    // carry a value or none does.
    void add(std::int64_t rule_id, Timestamp t, MicroPoints value = kNoValue);
    // Whether an occurrence at t would land where a pattern rule's counting is settled: it can
    // change what counts after it, so the caller rebuilds from raw rows instead of adding it.
    bool settled_at(std::int64_t rule_id, Timestamp t) const;
    // Removes one occurrence; false when it is not there, or when occurrences were dropped
    // (marked exact from some time): the caller rebuilds from raw rows.
    bool remove(std::int64_t rule_id, Timestamp t, MicroPoints value = kNoValue);
    void merge(const Summary& other);
    void clear() {
        rules_.clear();
        exact_from_ = kTimestampMin;
    }
    bool empty() const { return rules_.empty(); }
    // Whether a pattern rule's counting is settled (a stored summary; never merged).
    bool settled() const {
        return std::any_of(rules_.begin(), rules_.end(), [](const RuleOccurrences& r) { return r.has_decisions(); });
    }
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
                if (!r.values.empty())
                    r.values.erase(r.values.begin(), r.values.begin() + static_cast<std::ptrdiff_t>(n));
            }
            if (r.empty()) continue;
            if (out != i) rules_[out] = std::move(r);
            out++;
        }
        rules_.resize(out);
        return dropped;
    }
    // Settles a pattern rule's counting before `until` (see RuleOccurrences); `settle` gets
    // the rule's entry and changes it in place; true when it changed anything.
    template <class F>
    bool settle(std::int64_t rule_id, F&& settle_entry) {
        normalize();
        auto it = find(rule_id);
        if (it == rules_.end() || it->rule_id != rule_id) return false;
        const bool changed = settle_entry(*it);
        if (it->empty()) rules_.erase(it);
        return changed;
    }
    // Replaces a rule's entry with `entry` (an empty one removes it); true when it changed.
    bool replace_rule(std::int64_t rule_id, RuleOccurrences entry);
    // A rule's entry; null when it has none.
    const RuleOccurrences* entry_of(std::int64_t rule_id) const;
    // Occurrences that can no longer count from `t` on may have been dropped: results are
    // exact only as of `t` or later (the mark only moves forward).
    void mark_exact_from(Timestamp t);
    Timestamp exact_from() const { return exact_from_; }
    bool exact_at(Timestamp as_of) const { return as_of >= exact_from_; }

    // Compact binary form: version byte (2 when marked: then the exact-from time; 3 when also
    // a pattern rule is settled), then per rule its id and delta-encoded times (version 3: then
    // a flag and, when set, decided_until, earlier, decided_count and the decided times;
    // version 4, written only when a rule carries values: version 3, then a flag and the values).
    std::string serialize() const;
    // Throws UserError (data corrupted) on malformed input. Leading zero bytes are skipped: a
    // storage layer may pad the encoding in front (the version byte is never zero).
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
