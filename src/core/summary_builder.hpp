#pragma once
#include "guard.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "summary.hpp"

namespace leadscore {

// Builds many leads' summaries from occurrences that arrive in no lead order (a scan of the
// activity table). A row costs a lookup in a flat hash table and an append; the occurrences
// are added to the summaries in batches, grouped by lead, so a summary is searched once per
// batch instead of once per row (which, over a table larger than the caches, missed memory
// at every step).
class SummaryBuilder {
public:
    explicit SummaryBuilder(std::size_t batch = std::size_t{1} << 20) : batch_(batch) {}

    // The dense index of a lead, added (with an empty summary) when new.
    std::uint32_t lead(std::string_view key);
    // Gathers one occurrence of lead (an index from lead()); applies the batch when full.
    void add(std::uint32_t lead, std::int64_t rule_id, Timestamp t, MicroPoints value = kNoValue);
    // Applies what is gathered: afterwards summary() holds every occurrence added.
    void flush();

    std::size_t size() const { return keys_.size(); }
    const std::string& key(std::uint32_t lead) const { return keys_[lead]; }
    Summary& summary(std::uint32_t lead) { return summaries_[lead]; }

private:
    struct Slot {
        std::uint64_t hash = 0;
        std::uint32_t lead = kEmpty;
        // Keys this short are compared here, without a visit to keys_.
        std::uint32_t length = 0;
        char inline_key[16] = {};
    };
    struct Pending {
        std::uint32_t lead;
        std::int64_t rule_id;
        Timestamp time;
        MicroPoints value;
    };
    static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;

    void grow();
    bool matches(const Slot& s, std::uint64_t hash, std::string_view key) const;

    std::size_t batch_;
    std::vector<Slot> slots_;
    std::vector<std::string> keys_;
    std::vector<Summary> summaries_;
    std::vector<Pending> pending_, sorted_;
    std::vector<std::uint32_t> counts_;
};

}  // namespace leadscore
