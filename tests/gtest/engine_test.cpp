#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <variant>

#include "core/decimal.hpp"
#include "core/deltas.hpp"
#include "core/engine.hpp"
#include "core/rules.hpp"
#include "core/summary.hpp"
#include "core/timecalc.hpp"

using namespace leadscore;

namespace {

MicroPoints pts(const char* s) { return *parse_points(s, nullptr); }
constexpr Timestamp kDay = kMicrosPerDay;

ActivityRuleSpec rule(std::int64_t id, const char* type, const char* points) {
    ActivityRuleSpec r;
    r.id = id;
    r.name = type;
    r.activity_type = type;
    r.points = pts(points);
    return r;
}

Model model_of(std::vector<ActivityRuleSpec> rules, std::vector<StageSpec> stages = {},
               std::optional<MicroPoints> lo = std::nullopt, std::optional<MicroPoints> hi = std::nullopt,
               std::vector<FitRuleSpec> fit = {}) {
    return Model(ModelSpec{"m", lo, hi}, std::move(rules), std::move(fit), std::move(stages));
}

MicroPoints engagement(const Model& m, const Summary& s, Timestamp as_of) {
    return compute_engagement(m, s, as_of, false).engagement;
}

}  // namespace

TEST(Decimal, ParsesAndFormats) {
    EXPECT_EQ(pts("10"), 10 * kPointScale);
    EXPECT_EQ(pts("-2.5"), -2500000);
    EXPECT_EQ(pts("1e3"), 1000 * kPointScale);
    EXPECT_EQ(pts("0.000001"), 1);
    EXPECT_EQ(pts("1.5000000"), 1500000);
    std::string why;
    EXPECT_FALSE(parse_points("NaN", &why));
    EXPECT_NE(why.find("finite"), std::string::npos);
    EXPECT_FALSE(parse_points("Infinity", &why));
    EXPECT_FALSE(parse_points("0.0000001", &why));
    EXPECT_NE(why.find("6 decimal"), std::string::npos);
    EXPECT_FALSE(parse_points("1e13", &why));
    EXPECT_FALSE(parse_points("abc", &why));
    EXPECT_EQ(format_points(pts("145")), "145");
    EXPECT_EQ(format_points(pts("-2.5")), "-2.5");
    EXPECT_EQ(format_points(1), "0.000001");
}

TEST(TimeCalc, CalendarMonthsAndDays) {
    // 2024-01-31 00:00 UTC = 8796 days after 2000-01-01.
    const Timestamp jan31 = 8796 * kDay + 3600LL * kMicrosPerSecond;
    EXPECT_EQ(add_interval(jan31, Interval{1, 0, 0}), (8796 + 29) * kDay + 3600LL * kMicrosPerSecond);  // Feb 29
    const Timestamp jan31_2023 = (8796 - 365) * kDay;
    EXPECT_EQ(add_interval(jan31_2023, Interval{1, 0, 0}), (8796 - 365 + 28) * kDay);  // Feb 28
    EXPECT_EQ(add_interval(0, Interval{0, 2, 5}), 2 * kDay + 5);
    EXPECT_EQ(add_interval(-kDay, Interval{0, 1, 0}), 0);
    EXPECT_EQ(add_interval(kTimestampMax, Interval{1, 0, 0}), kTimestampMax);
    EXPECT_DOUBLE_EQ(interval_length_micros(Interval{1, 0, 0}), 30.0 * kDay);
    EXPECT_FALSE(interval_is_positive(Interval{0, 0, 0}));
    EXPECT_FALSE(interval_is_positive(Interval{1, -1, 0}));
    EXPECT_TRUE(interval_is_positive(Interval{0, 0, 1}));
}

TEST(Rules, ParsesOperators) {
    EXPECT_EQ(parse_op("NOT   IN"), Op::NotIn);
    EXPECT_EQ(parse_op("Domain In List"), Op::DomainInList);
    EXPECT_EQ(parse_op("!="), Op::Ne);
    EXPECT_EQ(parse_op("~*"), Op::RegexI);
    EXPECT_FALSE(parse_op("=="));
    EXPECT_EQ(op_arity(Op::Between), 2);
    EXPECT_EQ(op_arity(Op::IsNull), 0);
    EXPECT_EQ(op_arity(Op::In), -1);
}

namespace {
RawRuleFields raw_fit(const char* op, std::vector<std::optional<std::string>> values) {
    RawRuleFields r;
    r.table = "fit_rule";
    r.rule_label = "\"ceo\" (id 3)";
    r.attribute = "title";
    r.op = op;
    r.values = std::move(values);
    r.points_text = "20";
    return r;
}
std::string validation_error(const RawRuleFields& r) {
    try {
        validate_rule_fields(r);
    } catch (const UserError& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST(Rules, ValidationNamesRuleColumnAndProblem) {
    EXPECT_EQ(validation_error(raw_fit("=", {"CEO"})), "");
    EXPECT_EQ(validation_error(raw_fit("===", {"x"})), "fit_rule \"ceo\" (id 3): column \"op\" has unknown operator \"===\"");
    EXPECT_NE(validation_error(raw_fit("between", {"1"})).find("exactly two values"), std::string::npos);
    EXPECT_NE(validation_error(raw_fit("=", {"a", "b"})).find("exactly one value"), std::string::npos);
    EXPECT_NE(validation_error(raw_fit("in", {})).find("at least one value"), std::string::npos);
    EXPECT_NE(validation_error(raw_fit("is null", {"x"})).find("no values"), std::string::npos);
    EXPECT_NE(validation_error(raw_fit("in", {"a", std::nullopt})).find("NULL"), std::string::npos);
    auto r = raw_fit("=", {"x"});
    r.points_text = "NaN";
    EXPECT_NE(validation_error(r).find("column \"points\""), std::string::npos);
    RawRuleFields a;
    a.table = "activity_rule";
    a.rule_label = "\"open\" (id 1)";
    a.activity_type = "email_open";
    a.points_text = "2";
    a.expires_after = Interval{0, 0, 0};
    EXPECT_NE(validation_error(a).find("column \"expires_after\" must be a positive interval"), std::string::npos);
    a.expires_after = Interval{3, 0, 0};
    a.half_life = Interval{0, 7, 0};
    EXPECT_NE(validation_error(a).find("cannot be set together"), std::string::npos);
    a.half_life.reset();
    a.max_count = 0;
    EXPECT_NE(validation_error(a).find("column \"max_count\""), std::string::npos);
    EXPECT_EQ(email_domain("A@Hotmail.COM "), "hotmail.com");
    EXPECT_EQ(email_domain("a@b@Gmail.com"), "gmail.com");
    EXPECT_EQ(email_domain("nobody"), "");
}

namespace {
using V = std::optional<std::variant<double, std::string>>;
struct TestOps {
    bool is_null(const V& v) const { return !v.has_value(); }
    bool binary(Op op, const V& l, const V& r) const {
        const auto& a = *l;
        const auto& b = *r;
        switch (op) {
            case Op::Eq: return a == b;
            case Op::Ne: return a != b;
            case Op::Lt: return a < b;
            case Op::Le: return a <= b;
            case Op::Gt: return a > b;
            case Op::Ge: return a >= b;
            default: return std::get<std::string>(a).find(std::get<std::string>(b)) != std::string::npos;
        }
    }
    bool in_list(const V& v) const { return std::get<std::string>(*v) == "listed"; }
    bool domain_in_list(const V& v) const { return email_domain(std::get<std::string>(*v)) == "gmail.com"; }
};
bool eval(Op op, V v, std::vector<V> operands = {}) {
    TestOps ops;
    return evaluate_condition(op, v, operands, ops);
}
}  // namespace

TEST(Condition, EveryOperatorAndNull) {
    EXPECT_TRUE(eval(Op::Between, 5.0, {1.0, 5.0}));
    EXPECT_FALSE(eval(Op::Between, 6.0, {1.0, 5.0}));
    EXPECT_TRUE(eval(Op::In, std::string("b"), {std::string("a"), std::string("b")}));
    EXPECT_TRUE(eval(Op::NotIn, std::string("c"), {std::string("a"), std::string("b")}));
    EXPECT_TRUE(eval(Op::InList, std::string("listed")));
    EXPECT_TRUE(eval(Op::DomainInList, std::string("x@GMAIL.com")));
    EXPECT_TRUE(eval(Op::Gt, 2.0, {1.0}));
    const V null;
    for (Op op : {Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Like, Op::ILike, Op::Regex, Op::RegexI})
        EXPECT_FALSE(eval(op, null, {std::string("x")}));
    EXPECT_FALSE(eval(Op::Between, null, {1.0, 2.0}));
    EXPECT_FALSE(eval(Op::In, null, {1.0}));
    EXPECT_FALSE(eval(Op::NotIn, null, {1.0}));
    EXPECT_FALSE(eval(Op::InList, null));
    EXPECT_FALSE(eval(Op::DomainInList, null));
    EXPECT_FALSE(eval(Op::IsNotNull, null));
    EXPECT_TRUE(eval(Op::IsNull, null));
    EXPECT_FALSE(eval(Op::IsNull, 1.0));
}

TEST(Summary, MultisetSerializeMerge) {
    Summary a, b;
    a.add(7, 30);
    a.add(7, 10);
    a.add(7, 10);
    a.add(-2, -500);
    b.add(7, 20);
    EXPECT_TRUE(a.remove(7, 10));
    EXPECT_FALSE(a.remove(7, 99));
    a.merge(b);
    EXPECT_EQ(a.occurrences(7), (std::vector<Timestamp>{10, 20, 30}));
    const std::string bytes = a.serialize();
    Summary back = Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    EXPECT_TRUE(back == a);
    EXPECT_TRUE(Summary::deserialize(nullptr, 0).empty());
    EXPECT_THROW(Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size() - 1), UserError);
    std::string bad = bytes;
    bad[0] = 9;
    EXPECT_THROW(Summary::deserialize(reinterpret_cast<const unsigned char*>(bad.data()), bad.size()), UserError);
    bad = bytes + "x";
    EXPECT_THROW(Summary::deserialize(reinterpret_cast<const unsigned char*>(bad.data()), bad.size()), UserError);
}

TEST(Engine, SeedExamples) {
    Model m = model_of({rule(1, "newsletter", "10"), rule(2, "ebook", "10"), rule(3, "case_study", "25"),
                        rule(4, "demo_request", "100")});
    Summary s;
    EXPECT_EQ(engagement(m, s, 0), 0);  // empty history
    for (std::int64_t id = 1; id <= 4; id++) s.add(id, 0);
    EXPECT_EQ(engagement(m, s, kDay), pts("145"));
}

TEST(Engine, OnceCapsAndMaxPoints) {
    auto once = rule(1, "newsletter", "10");
    once.once = true;
    auto capped = rule(2, "open", "2");
    capped.max_count = 3;
    auto limited = rule(3, "click", "-5");
    limited.max_points = pts("12");
    Model m = model_of({once, capped, limited});
    Summary s;
    for (int i = 0; i < 5; i++) {
        s.add(1, i);
        s.add(2, i);
        s.add(3, i);
    }
    auto r = compute_engagement(m, s, kDay, true);
    EXPECT_EQ(r.engagement, pts("10") + pts("6") - pts("12"));
    ASSERT_EQ(r.contributions.size(), 3u);
    EXPECT_EQ(r.contributions[1].occurrences, 3);
    EXPECT_EQ(r.contributions[2].points, -pts("12"));
}

TEST(Engine, ExpiryCountsMostRecentUnexpired) {
    auto open = rule(1, "open", "2");
    open.expires_after = Interval{0, 10, 0};
    open.max_count = 2;
    Model m = model_of({open});
    Summary s;
    s.add(1, 0);
    s.add(1, 5 * kDay);
    s.add(1, 5 * kDay);  // equal timestamps
    s.add(1, 8 * kDay);
    // as of day 9: all four unexpired, cap 2 -> the two most recent
    auto r = compute_engagement(m, s, 9 * kDay, true);
    EXPECT_EQ(r.engagement, pts("4"));
    EXPECT_EQ(*r.contributions[0].next_expiry, 15 * kDay);
    // exactly at t + expires_after the occurrence at 0 no longer counts
    EXPECT_EQ(engagement(m, s, 10 * kDay), pts("4"));
    EXPECT_EQ(engagement(m, s, 16 * kDay), pts("2"));
    EXPECT_EQ(engagement(m, s, 18 * kDay), 0);
    auto three_months = rule(2, "open", "2");
    three_months.expires_after = Interval{3, 0, 0};
    Model q = model_of({three_months});
    Summary t;
    t.add(2, 0);  // 2000-01-01
    EXPECT_EQ(engagement(q, t, 90 * kDay), pts("2"));   // Mar 31
    EXPECT_EQ(engagement(q, t, 91 * kDay), 0);          // Apr 1 = t + 3 months
}

TEST(Engine, FutureOccurrencesAndNextChange) {
    Model m = model_of({rule(1, "demo", "100")});
    Summary s;
    s.add(1, 10 * kDay);
    auto r = compute_engagement(m, s, kDay, false);
    EXPECT_EQ(r.engagement, 0);
    EXPECT_EQ(*r.next_change, 10 * kDay);
    EXPECT_EQ(engagement(m, s, 10 * kDay), pts("100"));
}

TEST(Engine, HalfLifeDecay) {
    auto page = rule(1, "pricing", "20");
    page.half_life = Interval{0, 7, 0};
    Model m = model_of({page});
    Summary s;
    s.add(1, 0);
    EXPECT_EQ(engagement(m, s, 7 * kDay), pts("10"));
    EXPECT_EQ(engagement(m, s, 14 * kDay), pts("5"));
    auto r = compute_engagement(m, s, 14 * kDay, false);
    EXPECT_EQ(*r.next_change, 14 * kDay + 1);
}

TEST(Engine, FitClampStagesAndDisqualification) {
    FitRuleSpec ceo;
    ceo.id = 1;
    ceo.name = "CEO";
    ceo.points = pts("20");
    FitRuleSpec competitor;
    competitor.id = 2;
    competitor.name = "competitor";
    competitor.points = pts("-1000");
    competitor.disqualify = true;
    StageSpec mql{"MQL", pts("40"), std::nullopt, std::nullopt, false};
    StageSpec sql{"SQL", pts("65"), pts("20"), std::nullopt, true};
    StageSpec disabled_rule_stage{"cold", std::nullopt, std::nullopt, std::nullopt, false};
    auto webinar = rule(1, "webinar", "10");
    auto disabled = rule(2, "x", "50");
    disabled.enabled = false;
    auto demo = rule(3, "demo", "100");
    Model m = model_of({webinar, disabled, demo}, {mql, sql, disabled_rule_stage}, pts("0"), pts("100"), {ceo, competitor});
    Summary s;
    s.add(1, 0);
    s.add(2, 0);
    EngagementResult e = compute_engagement(m, s, kDay, false);
    EXPECT_EQ(e.engagement, pts("10"));  // disabled rule ignored
    FitResult f = compute_fit(m, std::vector<std::int64_t>{1});
    LeadScore ls = combine_score(m, f.fit, f.disqualified, e);
    EXPECT_EQ(ls.score, pts("30"));
    EXPECT_EQ(ls.stage, std::optional<std::string>("cold"));
    s.add(3, 0);
    e = compute_engagement(m, s, kDay, false);
    ls = combine_score(m, f.fit, f.disqualified, e);
    EXPECT_EQ(ls.score, pts("100"));  // clamped from 130
    EXPECT_EQ(ls.stage, std::optional<std::string>("SQL"));
    // hot but ill-fitting: no CEO fit -> MQL, not SQL
    ls = combine_score(m, 0, false, e);
    EXPECT_EQ(ls.stage, std::optional<std::string>("MQL"));
    FitResult bad = compute_fit(m, {1, 2});
    ls = combine_score(m, bad.fit, bad.disqualified, e);
    EXPECT_TRUE(ls.disqualified);
    EXPECT_EQ(ls.stage, std::optional<std::string>("disqualified"));
    EXPECT_EQ(ls.score, 0);  // clamped
    // sticky SQL is kept against a downward move, not against an upward one
    EXPECT_EQ(apply_sticky(m, std::string("SQL"), std::string("MQL"), false), std::optional<std::string>("SQL"));
    EXPECT_EQ(apply_sticky(m, std::string("MQL"), std::string("cold"), false), std::optional<std::string>("cold"));
    EXPECT_EQ(apply_sticky(m, std::string("SQL"), std::string("MQL"), true), std::optional<std::string>("MQL"));
}

TEST(Engine, ActivityDisqualifiesWhileCounted) {
    auto unsub = rule(1, "competitor_visit", "0");
    unsub.disqualify = true;
    unsub.expires_after = Interval{0, 1, 0};
    Model m = model_of({unsub});
    Summary s;
    s.add(1, 0);
    EXPECT_TRUE(compute_engagement(m, s, 0, false).disqualified);
    EXPECT_FALSE(compute_engagement(m, s, 2 * kDay, false).disqualified);
}

TEST(Engine, PruneWatermarkIsWholeWeeksAtLeastADayBack) {
    const Timestamp week = 7 * kDay;
    for (Timestamp as_of : {Timestamp(0), 3 * kDay, 8 * kDay, 8 * kDay + 1, 400 * kDay + 17, -5 * kDay, -30 * kDay}) {
        const Timestamp w = prune_watermark(as_of);
        EXPECT_LE(w, as_of - kDay) << as_of;
        EXPECT_GT(w, as_of - kDay - week) << as_of;
        EXPECT_EQ(((w % week) + week) % week, 0) << as_of;
    }
    // Within one week the watermark stays put: rescores find unchanged leads unchanged.
    EXPECT_EQ(prune_watermark(8 * kDay), prune_watermark(14 * kDay + kDay - 1));
    EXPECT_EQ(prune_watermark(kTimestampMax), kTimestampMin);
    EXPECT_EQ(prune_watermark(kTimestampMin), kTimestampMin);
}

TEST(Engine, PruningDropsOnlyWhatNeverCountsAgain) {
    auto open = rule(1, "open", "2");
    open.expires_after = Interval{0, 10, 0};
    open.max_count = 2;
    auto forever = rule(2, "visit", "1");  // no expiry, no cap: kept as a count
    Model m = model_of({open, forever});
    Summary s;
    for (Timestamp t : {Timestamp(0), 5 * kDay, 20 * kDay, 40 * kDay}) s.add(1, t);
    s.add(2, 0);
    s.add(3, 0);  // a rule the model no longer has: kept as it is
    Summary pruned = s;
    const Timestamp as_of = 45 * kDay;
    prune_expired(m, pruned, as_of);
    const Timestamp w = prune_watermark(as_of);
    // day 0 and 5 expire by day 15 <= w; day 20 expires at 30 <= w (w is day 42); day 40 stays
    EXPECT_EQ(pruned.occurrences(1), std::vector<Timestamp>({40 * kDay}));
    EXPECT_TRUE(pruned.occurrences(2).empty());
    ASSERT_NE(pruned.entry_of(2), nullptr);
    EXPECT_EQ(pruned.entry_of(2)->decided_count, 1);
    EXPECT_EQ(compute_engagement(m, pruned, as_of, false).engagement,
              compute_engagement(m, s, as_of, false).engagement);
    EXPECT_EQ(pruned.occurrences(3), std::vector<Timestamp>({0}));
    EXPECT_EQ(pruned.exact_from(), w);
    EXPECT_TRUE(pruned.exact_at(w));
    EXPECT_FALSE(pruned.exact_at(w - 1));
    EXPECT_FALSE(pruned.remove(1, 0)) << "a pruned occurrence is gone: its delete must rebuild";
    EXPECT_FALSE(pruned.remove(1, 40 * kDay)) << "a kept one too: a dropped one may count again";
    // The mark survives storage and only moves forward.
    const std::string bytes = pruned.serialize();
    Summary back = Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    EXPECT_TRUE(back == pruned);
    EXPECT_EQ(back.exact_from(), w);
    back.mark_exact_from(0);
    EXPECT_EQ(back.exact_from(), w);
    // A cap keeps the cap's worth up to the watermark, and everything after it.
    auto capped = rule(4, "visit", "1");
    capped.max_count = 2;
    Model c = model_of({capped});
    Summary many;
    for (Timestamp t : {Timestamp(0), kDay, 2 * kDay, 3 * kDay, 44 * kDay, 60 * kDay}) many.add(4, t);
    prune_expired(c, many, as_of);
    EXPECT_EQ(many.occurrences(4), std::vector<Timestamp>({2 * kDay, 3 * kDay, 44 * kDay, 60 * kDay}));
    // Nothing expired: nothing marked, stored in the first format.
    Summary young;
    young.add(1, 44 * kDay);
    prune_expired(m, young, as_of);
    EXPECT_EQ(young.exact_from(), kTimestampMin);
    EXPECT_EQ(young.serialize()[0], '\x01');
}

TEST(Engine, PrunedSummariesScoreExactlyFromTheirMarkOn) {
    // Random occurrences of rules with every combination of expiry, cap, once, decay,
    // max_points and disqualification:
    // a summary pruned as of t gives the unpruned result at every time from its mark on.
    std::uint64_t seed = 12345;
    auto next = [&seed](std::uint64_t n) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        return (seed >> 33) % n;
    };
    for (int round = 0; round < 300; round++) {
        std::vector<ActivityRuleSpec> rules;
        for (std::int64_t id = 1; id <= 4; id++) {
            auto r = rule(id, "t", next(2) ? "3" : "-2");
            if (next(3)) r.expires_after = next(2) ? Interval{0, static_cast<std::int32_t>(1 + next(60)), 0}
                                                     : Interval{static_cast<std::int32_t>(1 + next(3)), 0, 0};
            if (next(3) == 0) r.max_count = 1 + next(3);
            if (next(5) == 0) r.once = true;
            if (next(6) == 0) r.disqualify = true;
            if (next(4) == 0) r.half_life = Interval{0, static_cast<std::int32_t>(1 + next(30)), 0};
            if (next(4) == 0) r.max_points = pts("5");
            rules.push_back(r);
        }
        Model m = model_of(rules);
        Summary full;
        for (int k = 0; k < 40; k++)
            full.add(1 + static_cast<std::int64_t>(next(4)), static_cast<Timestamp>(next(200)) * kDay + next(kDay));
        const Timestamp pruned_at = static_cast<Timestamp>(20 + next(200)) * kDay + next(kDay);
        Summary pruned = full;
        prune_expired(m, pruned, pruned_at);
        EXPECT_LE(pruned.occurrence_count(), full.occurrence_count());
        for (Timestamp as_of : {pruned.exact_from(), pruned_at - kDay, pruned_at, pruned_at + 3 * kDay,
                                pruned_at + 90 * kDay}) {
            if (!pruned.exact_at(as_of)) continue;
            const auto a = compute_engagement(m, full, as_of, true);
            const auto b = compute_engagement(m, pruned, as_of, true);
            ASSERT_EQ(a.engagement, b.engagement) << "round " << round << " as_of " << as_of;
            ASSERT_EQ(a.disqualified, b.disqualified) << "round " << round;
            ASSERT_EQ(a.next_change, b.next_change) << "round " << round;
            ASSERT_EQ(a.contributions.size(), b.contributions.size()) << "round " << round;
            for (std::size_t i = 0; i < a.contributions.size(); i++) {
                EXPECT_EQ(a.contributions[i].occurrences, b.contributions[i].occurrences);
                EXPECT_EQ(a.contributions[i].points, b.contributions[i].points);
                EXPECT_EQ(a.contributions[i].next_expiry, b.contributions[i].next_expiry);
            }
        }
    }
}

TEST(Engine, RulesForTypeFindsEveryTypeFewOrMany) {
    for (int types : {3, 40}) {
        std::vector<ActivityRuleSpec> rules;
        for (int i = 0; i < types; i++) {
            const std::string type = "type_" + std::to_string((i * 7) % types);
            rules.push_back(rule(2 * i + 1, type.c_str(), "1"));
            rules.push_back(rule(2 * i + 2, type.c_str(), "2"));
        }
        Model m = model_of(rules);
        for (int i = 0; i < types; i++) {
            const auto& found = m.rules_for_type("type_" + std::to_string(i));
            ASSERT_EQ(found.size(), 2u) << types << " types, type " << i;
            for (std::size_t idx : found) EXPECT_EQ(m.activity_rules()[idx].activity_type, "type_" + std::to_string(i));
        }
        EXPECT_TRUE(m.rules_for_type("type_").empty());
        EXPECT_TRUE(m.rules_for_type("").empty());
        EXPECT_TRUE(m.rules_for_type("type_999").empty());
    }
}

TEST(Engine, PrunedIncrementallyOrRebuiltGivesTheSameBytes) {
    auto open = rule(1, "open", "1");
    open.expires_after = Interval{0, 30, 0};
    auto demo = rule(2, "demo", "10");
    demo.once = true;
    Model m = model_of({open, demo});
    // Stored as of day 71 (old occurrences dropped), then one more activity on day 75, stored
    // as of day 78, when nothing more has expired.
    Summary live;
    for (Timestamp t : {Timestamp(0), 20 * kDay, 60 * kDay}) live.add(1, t);
    live.add(2, 5 * kDay);
    live.add(2, 65 * kDay);
    prune_expired(m, live, 71 * kDay);
    ASSERT_EQ(live.exact_from(), prune_watermark(71 * kDay));
    live.add(1, 75 * kDay);
    prune_expired(m, live, 78 * kDay);
    // The same raw rows rebuilt from scratch and stored as of day 78.
    Summary rebuilt;
    for (Timestamp t : {Timestamp(0), 20 * kDay, 60 * kDay, 75 * kDay}) rebuilt.add(1, t);
    rebuilt.add(2, 5 * kDay);
    rebuilt.add(2, 65 * kDay);
    prune_expired(m, rebuilt, 78 * kDay);
    EXPECT_EQ(live.serialize(), rebuilt.serialize());
    EXPECT_EQ(live.exact_from(), prune_watermark(78 * kDay));
    EXPECT_NE(prune_watermark(71 * kDay), prune_watermark(78 * kDay));
}

// A lead with a huge history of a rule that only counts (a bot's page views): its stored
// summary keeps the count and the last days' times, so an insert costs the same as for a lead
// with a short history; the score stays exact.
TEST(Engine, OnlyCountingRulesKeepACountNotTheirHistory) {
    auto visit = rule(1, "visit", "0.5");
    visit.max_points = 100000LL * kPointScale;
    auto open = rule(2, "open", "2");
    open.expires_after = Interval{0, 30, 0};
    Model m = model_of({visit, open});
    const Timestamp now = 400 * kDay;
    Summary full, stored;
    for (std::int64_t i = 0; i < 1000000; i++) {
        const Timestamp t = (i * 397) % (now - kDay);  // spread over the year and more
        full.add(1, t);
        stored.add(1, t);
    }
    full.add(2, now - 3 * kDay);
    stored.add(2, now - 3 * kDay);
    prune_expired(m, stored, now);
    EXPECT_LT(stored.occurrence_count(), 50000u) << "only the last week's times stay";
    EXPECT_LT(stored.serialize().size(), 200000u);
    EXPECT_EQ(compute_engagement(m, stored, now, false).engagement, compute_engagement(m, full, now, false).engagement);
    // Inserting more now and later: incremental equals the full history.
    for (int k = 1; k <= 20; k++) {
        const Timestamp t = now + k * kDay;
        full.add(1, t);
        DeltaMap d;
        const std::uint32_t lead = d.lead("bot");
        d.add(lead, Occurrence{1, t}, true);
        d.group();
        ASSERT_TRUE(apply_deltas(stored, d.added(lead), d.removed(lead), t));
        prune_expired(m, stored, t);
        EXPECT_EQ(compute_engagement(m, stored, t, false).engagement, compute_engagement(m, full, t, false).engagement)
            << k;
    }
    // Stored bytes are a function of the rows and the watermark: pruning the full history agrees.
    Summary again = full;
    prune_expired(m, again, now + 20 * kDay);
    EXPECT_EQ(again.serialize(), stored.serialize());
    // A backdated insert before the watermark cannot be added to a count: the caller rebuilds.
    DeltaMap d;
    const std::uint32_t lead = d.lead("bot");
    d.add(lead, Occurrence{1, 5 * kDay}, true);
    d.group();
    EXPECT_FALSE(apply_deltas(stored, d.added(lead), d.removed(lead), now + 20 * kDay));
}

// A burst (a bot's 10,000 views in the last days) keeps only its latest occurrences as times
// rather than everything after the week's watermark, so the summary stays small; a transaction
// older than the latest pruned occurrence finds it inexact and rebuilds.
TEST(Engine, BurstsOfARuleThatOnlyCountsKeepTheirLatestOccurrences) {
    auto visit = rule(1, "visit", "0.5");
    Model m = model_of({visit});
    const Timestamp now = 400 * kDay + 5 * 3600 * kMicrosPerSecond;
    Summary full, stored;
    for (std::int64_t i = 0; i < 10000; i++) {
        const Timestamp t = now - 3 * kDay + i * 20 * kMicrosPerSecond;  // every 20 s for ~2.3 days
        full.add(1, t);
        stored.add(1, t);
    }
    prune_expired(m, stored, now);
    EXPECT_LT(stored.occurrence_count(), 300u);
    EXPECT_GT(stored.exact_from(), prune_watermark(now));
    // The mark is the latest pruned occurrence: 256 views (about 85 minutes) before the last.
    EXPECT_EQ(stored.exact_from(), now - 3 * kDay + (10000 - 257) * 20 * kMicrosPerSecond);
    EXPECT_EQ(compute_engagement(m, stored, now, false).engagement, compute_engagement(m, full, now, false).engagement);
    Summary again = full;
    prune_expired(m, again, now);
    EXPECT_EQ(again.serialize(), stored.serialize());
    // Later inserts keep it exact; an as_of before the mark is refused (the caller rebuilds).
    DeltaMap d;
    const std::uint32_t lead = d.lead("bot");
    d.add(lead, Occurrence{1, now + 60 * kMicrosPerSecond}, true);
    d.group();
    Summary older = stored;
    EXPECT_FALSE(apply_deltas(older, d.added(lead), d.removed(lead), stored.exact_from() - 1));
    ASSERT_TRUE(apply_deltas(stored, d.added(lead), d.removed(lead), now + kDay));
    full.add(1, now + 60 * kMicrosPerSecond);
    EXPECT_EQ(compute_engagement(m, stored, now + kDay, false).engagement,
              compute_engagement(m, full, now + kDay, false).engagement);
}

// A bot's lead scored insert by insert (as live triggers do, each as of its own time) keeps a
// bounded summary however long its history grows, and the same bytes as a rebuild from all its
// rows; its score stays exact.
TEST(Engine, ALeadWithASteadyStreamKeepsABoundedSummary) {
    auto visit = rule(1, "visit", "0.0001");
    Model m = model_of({visit});
    const Timestamp start = 400 * kDay;
    Summary stored, full;
    std::size_t largest = 0;
    for (std::int64_t i = 0; i < 20000; i++) {
        const Timestamp t = start + i * 2 * kMicrosPerSecond;
        DeltaMap d;
        const std::uint32_t lead = d.lead("bot");
        d.add(lead, Occurrence{1, t}, true);
        d.group();
        ASSERT_TRUE(apply_deltas(stored, d.added(lead), d.removed(lead), t)) << i;
        prune_expired(m, stored, t);
        full.add(1, t);
        largest = std::max(largest, stored.occurrence_count());
    }
    const Timestamp end = start + 20000 * 2 * kMicrosPerSecond;
    EXPECT_LE(largest, 258u);
    Summary rebuilt = full;
    prune_expired(m, rebuilt, end - 2 * kMicrosPerSecond);
    EXPECT_EQ(rebuilt.serialize(), stored.serialize());
    EXPECT_EQ(compute_engagement(m, stored, end, false).engagement, compute_engagement(m, full, end, false).engagement);
}

// A disabled rule is matched and its occurrences pruned as if enabled, but never counted:
// enabling it again scores exactly what a rebuild would, from the summary alone.
TEST(Engine, DisabledRulesKeepTheirOccurrencesButDoNotCount) {
    auto open = rule(1, "open", "2");
    open.max_count = 3;
    auto demo = rule(2, "demo", "30");
    demo.disqualify = true;
    demo.enabled = false;
    Model off = model_of({open, demo});
    ASSERT_NE(off.activity_rule(2), nullptr);
    EXPECT_EQ(off.rules_for_type("demo").size(), 1u);
    Summary s;
    for (int i = 0; i < 5; i++) s.add(1, i * kDay);
    s.add(2, kDay);
    const Timestamp as_of = 400 * kDay;
    prune_expired(off, s, as_of);
    auto r = compute_engagement(off, s, as_of, true);
    EXPECT_EQ(r.engagement, pts("6"));
    EXPECT_FALSE(r.disqualified);
    ASSERT_EQ(r.contributions.size(), 1u);
    demo.enabled = true;
    Model on = model_of({open, demo});
    Summary rebuilt;
    for (int i = 0; i < 5; i++) rebuilt.add(1, i * kDay);
    rebuilt.add(2, kDay);
    prune_expired(on, rebuilt, as_of);
    EXPECT_EQ(s.serialize(), rebuilt.serialize());
    auto enabled = compute_engagement(on, s, as_of, false);
    EXPECT_EQ(enabled.engagement, pts("36"));
    EXPECT_TRUE(enabled.disqualified);
}
