#include "summary.hpp"

#include <algorithm>
#include <stdexcept>

namespace leadscore {

namespace {

constexpr unsigned char kSummaryVersion = 1;
// Version 2 adds the time from which the summary is exact (some expired occurrences dropped).
constexpr unsigned char kSummaryVersionMarked = 2;
// Version 3 adds, per rule, the settled counting of a time-pattern rule.
constexpr unsigned char kSummaryVersionSettled = 3;
// Version 4 adds, per rule, the multiply_by values of its occurrences.
constexpr unsigned char kSummaryVersionValued = 4;

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

std::uint64_t zigzag(std::int64_t v) {
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) {
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

class Reader {
public:
    Reader(const unsigned char* p, std::size_t n) : p_(p), end_(p + n) {}
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p_ >= end_) corrupt();
            unsigned char b = *p_++;
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        corrupt();
    }
    unsigned char byte() {
        if (p_ >= end_) corrupt();
        return *p_++;
    }
    bool done() const { return p_ == end_; }
    [[noreturn]] static void corrupt() {
        throw UserError(sqlstate::kDataCorrupted, "leadscore summary data is corrupted");
    }

private:
    const unsigned char* p_;
    const unsigned char* end_;
};

const std::vector<Timestamp> kNoOccurrences;

}  // namespace

std::vector<RuleOccurrences>::iterator Summary::find(std::int64_t rule_id) {
    return std::lower_bound(rules_.begin(), rules_.end(), rule_id,
                            [](const RuleOccurrences& r, std::int64_t id) { return r.rule_id < id; });
}

std::vector<RuleOccurrences>::const_iterator Summary::find(std::int64_t rule_id) const {
    return std::lower_bound(rules_.cbegin(), rules_.cend(), rule_id,
                            [](const RuleOccurrences& r, std::int64_t id) { return r.rule_id < id; });
}

RuleOccurrences& Summary::entry(std::int64_t rule_id) {
    auto it = find(rule_id);
    if (it == rules_.end() || it->rule_id != rule_id) {
        it = rules_.insert(it, RuleOccurrences{});
        it->rule_id = rule_id;
    }
    return *it;
}

void Summary::add(std::int64_t rule_id, Timestamp t, MicroPoints value) {
    RuleOccurrences& e = entry(rule_id);
    auto& v = e.times;
    if (value != kNoValue) {
        if (e.values.size() != v.size()) throw std::logic_error("leadscore: valued and plain occurrences mixed");
        if (!v.empty() && (v.back() > t || (v.back() == t && e.values.back() > value))) sorted_ = false;
        e.values.push_back(value);
    } else {
        if (!e.values.empty()) throw std::logic_error("leadscore: valued and plain occurrences mixed");
        if (!v.empty() && v.back() > t) sorted_ = false;
    }
    v.push_back(t);
}

bool Summary::settled_at(std::int64_t rule_id, Timestamp t) const {
    auto it = find(rule_id);
    return it != rules_.end() && it->rule_id == rule_id && t < it->decided_until;
}

void Summary::normalize() const {
    if (sorted_) return;
    for (auto& r : rules_) {
        if (r.values.empty()) {
            std::sort(r.times.begin(), r.times.end());
            continue;
        }
        std::vector<std::pair<Timestamp, MicroPoints>> pairs(r.times.size());
        for (std::size_t i = 0; i < pairs.size(); i++) pairs[i] = {r.times[i], r.values[i]};
        std::sort(pairs.begin(), pairs.end());
        for (std::size_t i = 0; i < pairs.size(); i++) {
            r.times[i] = pairs[i].first;
            r.values[i] = pairs[i].second;
        }
    }
    sorted_ = true;
}

bool Summary::remove(std::int64_t rule_id, Timestamp t, MicroPoints value) {
    // What was dropped may count again once an occurrence is gone: only raw rows can tell.
    if (exact_from_ != kTimestampMin) return false;
    normalize();
    auto it = find(rule_id);
    if (it == rules_.end() || it->rule_id != rule_id) return false;
    auto& v = it->times;
    auto pos = std::lower_bound(v.begin(), v.end(), t);
    if (value != kNoValue || !it->values.empty()) {
        if (value == kNoValue || it->values.empty()) return false;
        const auto first = static_cast<std::size_t>(pos - v.begin());
        std::size_t i = first;
        while (i < v.size() && v[i] == t && it->values[i] < value) i++;
        if (i == v.size() || v[i] != t || it->values[i] != value) return false;
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        it->values.erase(it->values.begin() + static_cast<std::ptrdiff_t>(i));
        if (it->empty()) rules_.erase(it);
        return true;
    }
    if (pos == v.end() || *pos != t) return false;
    v.erase(pos);
    if (it->empty()) rules_.erase(it);
    return true;
}

void Summary::merge(const Summary& other) {
    for (const auto& r : other.rules_) {
        // Only summaries built from raw rows are merged (aggregate states): never settled ones.
        if (r.has_decisions()) throw std::logic_error("leadscore: merging a settled summary");
        if (r.times.empty()) continue;
        RuleOccurrences& e = entry(r.rule_id);
        if (e.values.size() != e.times.size() && !r.values.empty())
            throw std::logic_error("leadscore: valued and plain occurrences mixed");
        e.times.insert(e.times.end(), r.times.begin(), r.times.end());
        e.values.insert(e.values.end(), r.values.begin(), r.values.end());
        if (!e.values.empty() && e.values.size() != e.times.size())
            throw std::logic_error("leadscore: valued and plain occurrences mixed");
    }
    sorted_ = false;
    mark_exact_from(other.exact_from_);
}

namespace {
bool same_entry(const RuleOccurrences& a, const RuleOccurrences& b) {
    return a.times == b.times && a.values == b.values && a.decided_until == b.decided_until &&
           a.decided == b.decided && a.decided_count == b.decided_count && a.earlier == b.earlier;
}
}  // namespace

bool Summary::replace_rule(std::int64_t rule_id, RuleOccurrences entry) {
    normalize();
    entry.rule_id = rule_id;
    if (entry.values.empty() ? false : entry.values.size() != entry.times.size())
        throw std::logic_error("leadscore: valued and plain occurrences mixed");
    auto it = find(rule_id);
    const bool present = it != rules_.end() && it->rule_id == rule_id;
    if (entry.empty()) {
        if (!present) return false;
        rules_.erase(it);
        return true;
    }
    // Keep the entry normalized like the rest.
    if (!std::is_sorted(entry.times.begin(), entry.times.end()) || !entry.values.empty()) {
        std::vector<std::pair<Timestamp, MicroPoints>> pairs(entry.times.size());
        for (std::size_t i = 0; i < pairs.size(); i++)
            pairs[i] = {entry.times[i], entry.values.empty() ? kNoValue : entry.values[i]};
        std::sort(pairs.begin(), pairs.end());
        for (std::size_t i = 0; i < pairs.size(); i++) {
            entry.times[i] = pairs[i].first;
            if (!entry.values.empty()) entry.values[i] = pairs[i].second;
        }
    }
    if (present) {
        if (same_entry(*it, entry)) return false;
        *it = std::move(entry);
    } else {
        rules_.insert(it, std::move(entry));
    }
    return true;
}

const RuleOccurrences* Summary::entry_of(std::int64_t rule_id) const {
    normalize();
    auto it = find(rule_id);
    return it == rules_.end() || it->rule_id != rule_id ? nullptr : &*it;
}

void Summary::mark_exact_from(Timestamp t) { exact_from_ = std::max(exact_from_, t); }

std::size_t Summary::occurrence_count() const {
    std::size_t n = 0;
    for (const auto& r : rules_) n += r.times.size() + r.decided.size();
    return n;
}

const std::vector<Timestamp>& Summary::occurrences(std::int64_t rule_id) const {
    normalize();
    auto it = find(rule_id);
    return it == rules_.end() || it->rule_id != rule_id ? kNoOccurrences : it->times;
}

std::vector<std::int64_t> Summary::rule_ids() const {
    std::vector<std::int64_t> ids;
    ids.reserve(rules_.size());
    for (const auto& r : rules_) ids.push_back(r.rule_id);
    return ids;
}

namespace {

// First value zigzag-encoded absolute, then non-negative deltas.
void put_times(std::string& out, const std::vector<Timestamp>& v) {
    Timestamp prev = 0;
    for (std::size_t i = 0; i < v.size(); i++) {
        if (i == 0)
            put_varint(out, zigzag(v[0]));
        else
            put_varint(out, static_cast<std::uint64_t>(v[i]) - static_cast<std::uint64_t>(prev));
        prev = v[i];
    }
}

void read_times(Reader& r, std::uint64_t n, std::vector<Timestamp>& v) {
    v.reserve(n);
    if (n == 0) return;
    Timestamp prev = unzigzag(r.varint());
    v.push_back(prev);
    for (std::uint64_t i = 1; i < n; i++) {
        std::uint64_t delta = r.varint();
        std::uint64_t next = static_cast<std::uint64_t>(prev) + delta;
        if (static_cast<Timestamp>(next) < prev) Reader::corrupt();
        prev = static_cast<Timestamp>(next);
        v.push_back(prev);
    }
}

}  // namespace

std::string Summary::serialize() const {
    normalize();
    std::string out;
    // Typically 2-5 bytes per occurrence: one allocation.
    out.reserve(16 + 4 * rules_.size() + 5 * occurrence_count());
    const bool valued =
        std::any_of(rules_.begin(), rules_.end(), [](const RuleOccurrences& r) { return !r.values.empty(); });
    const bool settled = this->settled() || valued;
    if (settled) {
        out.push_back(static_cast<char>(valued ? kSummaryVersionValued : kSummaryVersionSettled));
        put_varint(out, zigzag(exact_from_));
    } else if (exact_from_ == kTimestampMin) {
        out.push_back(static_cast<char>(kSummaryVersion));
    } else {
        out.push_back(static_cast<char>(kSummaryVersionMarked));
        put_varint(out, zigzag(exact_from_));
    }
    put_varint(out, rules_.size());
    for (const auto& r : rules_) {
        put_varint(out, zigzag(r.rule_id));
        put_varint(out, r.times.size());
        put_times(out, r.times);
        if (valued) {
            put_varint(out, r.values.empty() ? 0 : 1);
            for (MicroPoints v : r.values) put_varint(out, zigzag(v));
        }
        if (!settled) continue;
        put_varint(out, r.has_decisions() ? 1 : 0);
        if (!r.has_decisions()) continue;
        put_varint(out, zigzag(r.decided_until));
        put_varint(out, static_cast<std::uint64_t>(r.earlier));
        put_varint(out, static_cast<std::uint64_t>(r.decided_count));
        put_varint(out, r.decided.size());
        put_times(out, r.decided);
    }
    return out;
}

Summary Summary::deserialize(const unsigned char* data, std::size_t len) {
    Summary s;
    // Zero bytes before the version byte are a storage layer's alignment padding.
    while (len > 0 && *data == 0) {
        data++;
        len--;
    }
    if (len == 0) return s;
    Reader r(data, len);
    const unsigned char version = r.byte();
    if (version != kSummaryVersion && version != kSummaryVersionMarked && version != kSummaryVersionSettled &&
        version != kSummaryVersionValued)
        throw UserError(sqlstate::kDataCorrupted, "leadscore summary has an unknown format version");
    const bool valued = version == kSummaryVersionValued;
    const bool settled = version == kSummaryVersionSettled || valued;
    if (version != kSummaryVersion) {
        s.exact_from_ = unzigzag(r.varint());
        if (s.exact_from_ == kTimestampMin && !valued) Reader::corrupt();
    }
    std::uint64_t nrules = r.varint();
    if (nrules > len) Reader::corrupt();
    std::int64_t last_id = INT64_MIN;
    s.rules_.reserve(nrules);
    for (std::uint64_t k = 0; k < nrules; k++) {
        std::int64_t id = unzigzag(r.varint());
        if (k > 0 && id <= last_id) Reader::corrupt();
        last_id = id;
        std::uint64_t n = r.varint();
        if ((n == 0 && !settled) || n > len) Reader::corrupt();
        s.rules_.emplace_back();
        RuleOccurrences& entry = s.rules_.back();
        entry.rule_id = id;
        read_times(r, n, entry.times);
        if (valued && r.varint() != 0) {
            entry.values.reserve(n);
            for (std::uint64_t i = 0; i < n; i++) {
                const MicroPoints v = unzigzag(r.varint());
                if (v == kNoValue || (i > 0 && entry.times[i] == entry.times[i - 1] && v < entry.values.back()))
                    Reader::corrupt();
                entry.values.push_back(v);
            }
        }
        if (settled && r.varint() != 0) {
            entry.decided_until = unzigzag(r.varint());
            entry.earlier = static_cast<std::int64_t>(r.varint());
            entry.decided_count = static_cast<std::int64_t>(r.varint());
            const std::uint64_t nd = r.varint();
            if (nd > len || entry.decided_until == kTimestampMin || entry.earlier < 0 || entry.decided_count < 0)
                Reader::corrupt();
            read_times(r, nd, entry.decided);
            if (!entry.values.empty()) Reader::corrupt();
        }
        if (entry.empty()) Reader::corrupt();
    }
    if (!r.done()) Reader::corrupt();
    return s;
}

bool Summary::operator==(const Summary& o) const {
    normalize();
    o.normalize();
    if (rules_.size() != o.rules_.size()) return false;
    for (std::size_t i = 0; i < rules_.size(); i++)
        if (rules_[i].rule_id != o.rules_[i].rule_id || rules_[i].times != o.rules_[i].times ||
            rules_[i].values != o.rules_[i].values ||
            rules_[i].decided_until != o.rules_[i].decided_until || rules_[i].decided != o.rules_[i].decided ||
            rules_[i].decided_count != o.rules_[i].decided_count || rules_[i].earlier != o.rules_[i].earlier)
            return false;
    return true;
}

}  // namespace leadscore
