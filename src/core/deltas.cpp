#include "core/deltas.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace leadscore {

namespace {

std::uint32_t tag_of(std::size_t hash) { return static_cast<std::uint32_t>(static_cast<std::uint64_t>(hash) >> 32); }

// A key of at most 7 bytes and its length in 8 bytes (never 0); 0 for longer keys.
std::uint64_t pack_short(std::string_view key) {
    if (key.size() > 7) return 0;
    char bytes[8] = {};
    bytes[0] = static_cast<char>(key.size() + 1);
    std::memcpy(bytes + 1, key.data(), key.size());
    std::uint64_t packed = 0;
    std::memcpy(&packed, bytes, sizeof packed);
    return packed;
}

std::size_t slots_for(std::size_t leads) {
    // At most half full: short probe runs.
    std::size_t n = 16;
    while (n < 2 * leads) n *= 2;
    return n;
}

}  // namespace

void DeltaMap::reserve(std::size_t leads) {
    keys_.reserve(leads);
    hashes_.reserve(leads);
    if (slots_for(leads) > slots_.size()) rehash(slots_for(leads));
}

void DeltaMap::rehash(std::size_t slots) {
    slots_.assign(slots, Slot{npos, 0, 0});
    const std::size_t mask = slots - 1;
    for (std::uint32_t i = 0; i < keys_.size(); i++) {
        std::size_t s = hashes_[i] & mask;
        while (slots_[s].lead != npos) s = (s + 1) & mask;
        slots_[s] = Slot{i, tag_of(hashes_[i]), pack_short(keys_[i])};
    }
}

std::size_t DeltaMap::probe(std::string_view key, std::size_t hash, std::uint64_t packed) const {
    const std::size_t mask = slots_.size() - 1;
    const std::uint32_t tag = tag_of(hash);
    for (std::size_t s = hash & mask;; s = (s + 1) & mask) {
        const Slot& slot = slots_[s];
        if (slot.lead == npos) return s;
        if (slot.tag != tag) continue;
        if (packed ? slot.packed == packed : keys_[slot.lead] == key) return s;
    }
}

std::uint32_t DeltaMap::find(std::string_view key) const {
    if (slots_.empty()) return npos;
    return slots_[probe(key, std::hash<std::string_view>{}(key), pack_short(key))].lead;
}

std::uint32_t DeltaMap::lead(std::string_view key) {
    if (2 * (keys_.size() + 1) > slots_.size()) rehash(slots_for(keys_.size() + 1));
    const std::size_t h = std::hash<std::string_view>{}(key);
    const std::uint64_t packed = pack_short(key);
    const std::size_t s = probe(key, h, packed);
    if (slots_[s].lead != npos) return slots_[s].lead;
    if (keys_.size() >= npos) throw std::length_error("leadscore: too many leads in one statement");
    const auto i = static_cast<std::uint32_t>(keys_.size());
    keys_.emplace_back(key);
    hashes_.push_back(h);
    slots_[s] = Slot{i, tag_of(h), packed};
    grouped_valid_ = false;
    return i;
}

void DeltaMap::add(std::uint32_t lead, const Occurrence& o, bool adding) {
    if (lead >= keys_.size()) throw std::out_of_range("leadscore: delta for an unknown lead");
    if (pending_.empty()) pending_.emplace_back();
    if (pending_.back().size() >= kPendingBlock) {
        pending_.emplace_back();
        pending_.back().reserve(kPendingBlock);
    }
    pending_.back().push_back(Pending{lead, adding, o});
    pending_count_++;
    grouped_valid_ = false;
}

void DeltaMap::group() {
    // Counting sort on (lead, removed?): count, prefix sums, then place in arrival order.
    const std::size_t parts = 2 * keys_.size();
    offsets_.assign(parts + 1, 0);
    for (const auto& block : pending_)
        for (const Pending& p : block) offsets_[2 * p.lead + (p.adding ? 0 : 1) + 1]++;
    for (std::size_t i = 1; i <= parts; i++) offsets_[i] += offsets_[i - 1];
    grouped_.resize(pending_count_);
    std::vector<std::size_t> next(offsets_.begin(), offsets_.end() - 1);
    for (const auto& block : pending_)
        for (const Pending& p : block) grouped_[next[2 * p.lead + (p.adding ? 0 : 1)]++] = p.occurrence;
    grouped_valid_ = true;
}

OccurrenceSpan DeltaMap::span(std::uint32_t lead, std::size_t part) const {
    if (!grouped_valid_) throw std::logic_error("leadscore: DeltaMap read before group()");
    if (lead >= keys_.size()) throw std::out_of_range("leadscore: delta for an unknown lead");
    const Occurrence* base = grouped_.data();
    return OccurrenceSpan{base + offsets_[2 * lead + part], base + offsets_[2 * lead + part + 1]};
}

void DeltaMap::clear() {
    keys_.clear();
    hashes_.clear();
    std::fill(slots_.begin(), slots_.end(), Slot{npos, 0, 0});
    // The first block's memory is kept for the statement's next batch.
    pending_.resize(1);
    pending_.front().clear();
    pending_count_ = 0;
    grouped_.clear();
    offsets_.clear();
    grouped_valid_ = false;
}

bool apply_deltas(Summary& summary, OccurrenceSpan added, OccurrenceSpan removed, Timestamp as_of) {
    if (!summary.exact_at(as_of)) return false;
    for (const Occurrence& o : removed)
        if (!summary.remove(o.rule_id, o.time, o.value)) return false;
    for (const Occurrence& o : added) {
        if (summary.settled_at(o.rule_id, o.time)) return false;
        summary.add(o.rule_id, o.time, o.value);
    }
    return true;
}

}  // namespace leadscore
