#pragma once
#include "guard.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "summary.hpp"
#include "types.hpp"

namespace leadscore {

struct Occurrence {
    std::int64_t rule_id;
    Timestamp time;
    MicroPoints value = kNoValue;  // multiply_by value
};

// A run of occurrences inside a DeltaMap.
struct OccurrenceSpan {
    const Occurrence* first = nullptr;
    const Occurrence* last = nullptr;
    const Occurrence* begin() const { return first; }
    const Occurrence* end() const { return last; }
    bool empty() const { return first == last; }
    std::size_t size() const { return static_cast<std::size_t>(last - first); }
};

// The occurrences one statement adds to and removes from its leads, by lead key.
// Rows append to one flat array and leads to an open-addressing table, so a statement of
// 1M rows over 100k leads allocates no per-lead containers; group() then orders the
// occurrences by lead in one stable, linear pass.
class DeltaMap {
public:
    static constexpr std::uint32_t npos = UINT32_MAX;

    void reserve(std::size_t leads);
    // The lead's index, created when new; indices are dense from 0 in first-seen order.
    std::uint32_t lead(std::string_view key);
    // npos when the lead has no entry.
    std::uint32_t find(std::string_view key) const;
    void add(std::uint32_t lead, const Occurrence& o, bool adding);

    std::size_t size() const { return keys_.size(); }
    bool empty() const { return keys_.empty(); }
    std::size_t occurrence_count() const { return pending_count_; }
    const std::string& key(std::uint32_t lead) const { return keys_.at(lead); }

    // Orders the occurrences by lead; added() and removed() need it and stay valid until
    // the next add() or clear().
    void group();
    OccurrenceSpan added(std::uint32_t lead) const { return span(lead, 0); }
    OccurrenceSpan removed(std::uint32_t lead) const { return span(lead, 1); }

    void clear();

private:
    struct Pending {
        std::uint32_t lead;
        bool adding;
        Occurrence occurrence;
    };
    OccurrenceSpan span(std::uint32_t lead, std::size_t part) const;
    // The slot holding the key, or the free slot where it would go.
    std::size_t probe(std::string_view key, std::size_t hash, std::uint64_t packed) const;
    void rehash(std::size_t slots);

    // A lead index (npos when free) with 32 bits of its key's hash and, for keys of up to 7
    // bytes (most integer keys), the key itself: a probe reads one slot and no key.
    struct Slot {
        std::uint32_t lead;
        std::uint32_t tag;
        std::uint64_t packed;
    };
    std::vector<std::string> keys_;
    std::vector<std::size_t> hashes_;    // per lead, for rehashing
    std::vector<Slot> slots_;            // size a power of two
    // In arrival order, in blocks: the first grows as a vector up to kPendingBlock entries, the
    // others are allocated at that size, so a statement of millions of rows never copies what
    // it gathered (nor holds two copies at once) and a single row allocates little.
    static constexpr std::size_t kPendingBlock = std::size_t{1} << 16;
    std::vector<std::vector<Pending>> pending_ = std::vector<std::vector<Pending>>(1);
    std::size_t pending_count_ = 0;
    std::vector<Occurrence> grouped_;    // by lead: its added, then its removed
    std::vector<std::size_t> offsets_;   // lead i: added [2i, 2i+1), removed [2i+1, 2i+2)
    bool grouped_valid_ = false;
};

// Applies one lead's deltas from a statement to its stored summary: removes `removed`, then
// adds `added`. False when the summary cannot be trusted as of as_of (pruned past it, a
// removed occurrence is not in it, or an added one lands where a pattern rule is settled):
// the caller rebuilds the lead from raw rows and discards the summary, whose content is then
// unspecified.
bool apply_deltas(Summary& summary, OccurrenceSpan added, OccurrenceSpan removed, Timestamp as_of);

}  // namespace leadscore
