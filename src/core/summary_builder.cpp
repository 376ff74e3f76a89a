#include "summary_builder.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace leadscore {

bool SummaryBuilder::matches(const Slot& s, std::uint64_t hash, std::string_view key) const {
    if (s.hash != hash || s.length != key.size()) return false;
    if (key.size() <= sizeof(s.inline_key)) return std::memcmp(s.inline_key, key.data(), key.size()) == 0;
    return keys_[s.lead] == key;
}

void SummaryBuilder::grow() {
    std::vector<Slot> old = std::move(slots_);
    // A power of two at least twice the leads: probe runs stay short.
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot());
    const std::size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
        if (s.lead == kEmpty) continue;
        std::size_t i = static_cast<std::size_t>(s.hash) & mask;
        while (slots_[i].lead != kEmpty) i = (i + 1) & mask;
        slots_[i] = s;
    }
}

std::uint32_t SummaryBuilder::lead(std::string_view key) {
    if ((keys_.size() + 1) * 2 > slots_.size()) grow();
    const std::uint64_t hash = std::hash<std::string_view>()(key);
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = static_cast<std::size_t>(hash) & mask;
    for (;; i = (i + 1) & mask) {
        const Slot& s = slots_[i];
        if (s.lead == kEmpty) break;
        if (matches(s, hash, key)) return s.lead;
    }
    const auto index = static_cast<std::uint32_t>(keys_.size());
    if (index == kEmpty) throw std::length_error("leadscore: too many leads in one scan");
    keys_.emplace_back(key);
    summaries_.emplace_back();
    counts_.push_back(0);
    Slot& s = slots_[i];
    s.hash = hash;
    s.lead = index;
    s.length = static_cast<std::uint32_t>(key.size());
    if (key.size() <= sizeof(s.inline_key)) std::memcpy(s.inline_key, key.data(), key.size());
    return index;
}

void SummaryBuilder::add(std::uint32_t lead, std::int64_t rule_id, Timestamp t, MicroPoints value) {
    pending_.push_back(Pending{lead, rule_id, t, value});
    counts_[lead]++;
    if (pending_.size() >= batch_) flush();
}

void SummaryBuilder::flush() {
    if (pending_.empty()) return;
    // Grouped by lead with a counting sort: counts_ becomes each lead's start, then its end.
    std::uint32_t start = 0;
    for (std::uint32_t& c : counts_) {
        const std::uint32_t n = c;
        c = start;
        start += n;
    }
    sorted_.resize(pending_.size());
    for (const Pending& p : pending_) sorted_[counts_[p.lead]++] = p;
    pending_.clear();
    std::size_t i = 0;
    while (i < sorted_.size()) {
        const std::uint32_t lead = sorted_[i].lead;
        Summary& s = summaries_[lead];
        for (; i < sorted_.size() && sorted_[i].lead == lead; i++) s.add(sorted_[i].rule_id, sorted_[i].time, sorted_[i].value);
    }
    std::fill(counts_.begin(), counts_.end(), 0);
}

}  // namespace leadscore
