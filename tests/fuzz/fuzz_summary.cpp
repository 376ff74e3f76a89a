// Stored summaries: any bytes either decode or raise a UserError; what decodes encodes back
// to an equal summary (settled pattern-rule state included).
// The same bytes also drive a sequence of adds and removes (valued occurrences of multiply_by
// rules and plain ones) checked against a multiset: remove() finds exactly what is there (a
// valued occurrence only with its value), the summary holds each rule's occurrences ordered by
// time then value, encodes with format version 4 exactly when a rule carries values and
// decodes to itself, parts built apart merge into the whole, and a statement's deltas
// (apply_deltas through a DeltaMap) give the same summary as the multiset.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/deltas.hpp"
#include "core/summary.hpp"
#include "fuzz_common.hpp"

using namespace leadscore;

namespace {

void decode_any_bytes(const std::uint8_t* data, std::size_t size) {
    Summary s;
    if (!expect_ok_or_user_error([&] { s = Summary::deserialize(data, size); })) return;
    const std::string bytes = s.serialize();
    Summary back = Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    FUZZ_CHECK(back == s);
    FUZZ_CHECK(back.serialize() == bytes);
    // Only summaries built from raw rows are merged (aggregate states).
    if (s.settled()) return;
    Summary merged;
    merged.merge(s);
    FUZZ_CHECK(merged == s);
}

using Multiset = std::map<std::int64_t, std::multiset<std::pair<Timestamp, MicroPoints>>>;

// The summary holds exactly the multiset, each rule's occurrences ordered by (time, value).
void check_equal(const Summary& s, const Multiset& expected) {
    std::size_t n = 0, rules = 0;
    for (const auto& [id, occ] : expected) {
        if (occ.empty()) continue;
        rules++;
        n += occ.size();
        const std::vector<Timestamp>& times = s.occurrences(id);
        FUZZ_CHECK(times.size() == occ.size());
        const RuleOccurrences* entry = nullptr;
        for (const RuleOccurrences& r : s.rules())
            if (r.rule_id == id) entry = &r;
        FUZZ_CHECK(entry != nullptr);
        std::size_t i = 0;
        for (const auto& [t, v] : occ) {
            FUZZ_CHECK(times[i] == t);
            FUZZ_CHECK(v == kNoValue ? entry->values.empty() : entry->values.at(i) == v);
            i++;
        }
    }
    FUZZ_CHECK(s.rules().size() == rules);
    FUZZ_CHECK(s.occurrence_count() == n);
    for (std::size_t i = 1; i < s.rules().size(); i++) FUZZ_CHECK(s.rules()[i - 1].rule_id < s.rules()[i].rule_id);
}

void build_and_check(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    // A handful of rules, each valued (multiply_by) or not; ids may be negative or large.
    const int n_rules = in.ConsumeIntegralInRange<int>(1, 4);
    std::vector<std::pair<std::int64_t, bool>> rules;
    for (int i = 0; i < n_rules; i++) {
        const std::int64_t id = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::int64_t>(-3, 8) : in.ConsumeIntegral<std::int64_t>();
        if (std::any_of(rules.begin(), rules.end(), [&](const auto& r) { return r.first == id; })) continue;
        rules.emplace_back(id, in.ConsumeBool());
    }
    auto time = [&]() -> Timestamp {
        return in.ConsumeBool() ? in.ConsumeIntegralInRange<Timestamp>(-2, 2) : in.ConsumeIntegral<Timestamp>();
    };
    auto value = [&](bool valued) -> MicroPoints {
        if (!valued) return kNoValue;
        return in.ConsumeBool() ? in.ConsumeIntegralInRange<MicroPoints>(-2, 2)
                                : in.ConsumeIntegralInRange<MicroPoints>(kNoValue + 1, INT64_MAX);
    };

    Summary s, part[2], adds_only, adds_reversed;
    Multiset expected, added;
    std::vector<Occurrence> add_log;
    const int n_ops = in.ConsumeIntegralInRange<int>(0, 48);
    for (int k = 0; k < n_ops; k++) {
        const auto& [id, valued] = rules[in.ConsumeIntegralInRange<std::size_t>(0, rules.size() - 1)];
        if (in.ConsumeIntegralInRange<int>(0, 2) != 0) {
            const Occurrence o{id, time(), value(valued)};
            s.add(o.rule_id, o.time, o.value);
            part[in.ConsumeBool() ? 1 : 0].add(o.rule_id, o.time, o.value);
            adds_only.add(o.rule_id, o.time, o.value);
            add_log.push_back(o);
            expected[id].emplace(o.time, o.value);
            added[id].emplace(o.time, o.value);
            continue;
        }
        // Remove something there (by its time and value) or something that may not be.
        Timestamp t;
        MicroPoints v;
        auto& occ = expected[id];
        if (!occ.empty() && in.ConsumeBool()) {
            auto it = occ.begin();
            std::advance(it, in.ConsumeIntegralInRange<std::size_t>(0, occ.size() - 1));
            t = it->first;
            v = it->second;
            // the same time with the other kind of value, or a neighbouring value
            switch (in.ConsumeIntegralInRange<int>(0, 3)) {
                case 0: v = v == kNoValue ? 0 : kNoValue; break;
                case 1: if (v != kNoValue && v < INT64_MAX) v++; break;
                default: break;
            }
        } else {
            t = time();
            v = in.ConsumeBool() ? value(valued) : value(!valued);
        }
        auto found = occ.find({t, v});
        const bool there = found != occ.end();
        FUZZ_CHECK(s.remove(id, t, v) == there);
        if (there) occ.erase(found);
    }
    check_equal(s, expected);

    // Adds in any order and split into parts that merge: the same summary.
    for (auto it = add_log.rbegin(); it != add_log.rend(); ++it) adds_reversed.add(it->rule_id, it->time, it->value);
    FUZZ_CHECK(adds_reversed == adds_only);
    check_equal(adds_only, added);
    Summary merged;
    merged.merge(part[0]);
    merged.merge(part[1]);
    FUZZ_CHECK(merged == adds_only);

    // The codec: version 4 exactly when a rule carries values; decodes to an equal summary.
    const std::string bytes = s.serialize();
    bool any_valued = false;
    for (const auto& [id, occ] : expected)
        for (const auto& [t, v] : occ) any_valued = any_valued || v != kNoValue;
    FUZZ_CHECK(!bytes.empty() && (static_cast<unsigned char>(bytes[0]) == 4) == any_valued);
    Summary back = Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    FUZZ_CHECK(back == s);
    FUZZ_CHECK(back.serialize() == bytes);
    check_equal(back, expected);

    // A statement's deltas for two leads: lead "a" removes some of what s holds (and maybe
    // something it does not), then adds new occurrences; lead "b" only adds.
    DeltaMap deltas;
    const std::uint32_t a = deltas.lead("a");
    const std::uint32_t b = deltas.lead("b");
    FUZZ_CHECK(deltas.lead("a") == a && deltas.find("b") == b && deltas.find("c") == DeltaMap::npos);
    Multiset after = expected, for_b;
    bool all_there = true;
    for (const auto& [id, occ] : expected)
        for (const auto& [t, v] : occ)
            if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
                deltas.add(a, Occurrence{id, t, v}, false);
                after[id].erase(after[id].find({t, v}));
            }
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
        const auto& [id, valued] = rules[0];
        const Occurrence o{id, time(), value(valued)};
        deltas.add(a, o, false);
        auto it = after[id].find({o.time, o.value});
        if (it == after[id].end()) all_there = false;
        else after[id].erase(it);
    }
    for (int k = in.ConsumeIntegralInRange<int>(0, 6); k > 0; k--) {
        const auto& [id, valued] = rules[in.ConsumeIntegralInRange<std::size_t>(0, rules.size() - 1)];
        const Occurrence o{id, time(), value(valued)};
        const bool to_a = in.ConsumeBool();
        deltas.add(to_a ? a : b, o, true);
        (to_a ? after : for_b)[id].emplace(o.time, o.value);
    }
    deltas.group();
    Summary sa = s, sb;
    const bool applied = apply_deltas(sa, deltas.added(a), deltas.removed(a), kTimestampMax);
    FUZZ_CHECK(applied == all_there);
    if (applied) check_equal(sa, after);
    FUZZ_CHECK(deltas.removed(b).empty());
    FUZZ_CHECK(apply_deltas(sb, deltas.added(b), deltas.removed(b), 0));
    check_equal(sb, for_b);

    // Marked exact from some time (occurrences dropped): removals go back to the raw rows.
    if (!expected.empty() && in.ConsumeBool()) {
        Summary marked = s;
        marked.mark_exact_from(time());
        if (marked.exact_from() != kTimestampMin) {
            const auto& [id, occ] = *expected.begin();
            if (!occ.empty()) FUZZ_CHECK(!marked.remove(id, occ.begin()->first, occ.begin()->second));
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    decode_any_bytes(data, size);
    build_and_check(data, size);
    return 0;
}
