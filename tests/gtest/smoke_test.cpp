#include <gtest/gtest.h>

#include "core/decimal.hpp"
#include "core/engine.hpp"

using namespace leadscore;

TEST(Smoke, SeedModelScores) {
    auto p = [](const char* s) { return *parse_points(s, nullptr); };
    std::vector<ActivityRuleSpec> rules;
    auto add = [&](std::int64_t id, const char* type, const char* pts) {
        ActivityRuleSpec r;
        r.id = id;
        r.name = type;
        r.activity_type = type;
        r.points = p(pts);
        rules.push_back(r);
    };
    add(1, "newsletter", "10");
    add(2, "ebook", "10");
    add(3, "case_study", "25");
    add(4, "demo_request", "100");
    Model m(ModelSpec{"seed", std::nullopt, std::nullopt}, rules, {}, {});
    Summary s;
    for (std::int64_t id = 1; id <= 4; id++) s.add(id, 1000);
    auto e = compute_engagement(m, s, 2000, true);
    EXPECT_EQ(format_points(e.engagement), "145");
}
