#pragma once
#include "guard.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "types.hpp"

namespace leadscore {

// The occurrences of a model's activity rules for one lead (or one aggregate group):
// rule id -> timestamps. It is a multiset, so the same rows always give the same summary,
// whether built at once, incrementally, or merged from parallel workers.
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
    bool empty() const;
    std::size_t occurrence_count() const;

    // Sorted timestamps of one rule (empty when none).
    const std::vector<Timestamp>& occurrences(std::int64_t rule_id) const;
    std::vector<std::int64_t> rule_ids() const;

    // Drops the rule's `count` oldest occurrences.
    void drop_oldest(std::int64_t rule_id, std::size_t count);
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
    mutable std::map<std::int64_t, std::vector<Timestamp>> rules_;
    mutable bool sorted_ = true;
    Timestamp exact_from_ = kTimestampMin;
};

}  // namespace leadscore
