// Learning: planted weights are recovered, separation and singular systems are clear errors,
// partial states merge and serialize exactly, naive Bayes recovers planted frequencies, and
// ROC AUC handles ties.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/learn.hpp"

using namespace leadscore;
using namespace leadscore::learn;

namespace {

// n rows with an intercept and three standard-normal features, outcomes drawn from the
// logistic model with the planted coefficients.
Dataset planted(const std::vector<double>& beta, std::size_t n, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    Dataset d;
    for (std::size_t i = 0; i < n; i++) {
        std::vector<double> row(beta.size());
        row[0] = 1;
        double z = beta[0];
        for (std::size_t j = 1; j < beta.size(); j++) {
            row[j] = normal(rng);
            z += beta[j] * row[j];
        }
        d.add(row, unit(rng) < sigmoid(z));
    }
    return d;
}

std::string sqlstate_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const UserError& e) {
        return e.sqlstate() + ": " + e.what();
    }
    return "no error";
}

}  // namespace

TEST(Logistic, RecoversPlantedWeightsWithinTolerance) {
    const std::vector<double> beta = {-1.0, 2.0, -0.5, 1.0};
    const Dataset d = planted(beta, 40000, 7);
    LogisticOptions o;
    o.l2 = 1e-3;
    const LogisticFit fit = fit_logistic(d, o);
    ASSERT_EQ(fit.coefficients.size(), beta.size());
    // Stated tolerance: 0.08 absolute with 40,000 rows (standard errors are about 0.02).
    for (std::size_t j = 0; j < beta.size(); j++) EXPECT_NEAR(fit.coefficients[j], beta[j], 0.08) << "coefficient " << j;
    EXPECT_LT(fit.iterations, 15);
}

TEST(Logistic, PenaltyShrinksTowardsZero) {
    const Dataset d = planted({0.0, 1.5, -1.5}, 2000, 3);
    LogisticOptions weak, strong;
    weak.l2 = 1e-3;
    strong.l2 = 500;
    const LogisticFit a = fit_logistic(d, weak), b = fit_logistic(d, strong);
    EXPECT_LT(std::fabs(b.coefficients[1]), std::fabs(a.coefficients[1]));
    EXPECT_LT(std::fabs(b.coefficients[2]), std::fabs(a.coefficients[2]));
}

TEST(Logistic, SeparationIsAClearErrorWithoutPenaltyAndFineWithOne) {
    Dataset d;
    for (int i = -20; i <= 20; i++)
        if (i != 0) d.add({1.0, static_cast<double>(i)}, i > 0);
    LogisticOptions none;
    none.l2 = 0;
    EXPECT_NE(sqlstate_of([&] { fit_logistic(d, none); }).find("22000: learning: the outcomes are perfectly separated"),
              std::string::npos);
    LogisticOptions some;
    some.l2 = 1.0;
    const LogisticFit fit = fit_logistic(d, some);
    EXPECT_GT(fit.coefficients[1], 0.0);
}

TEST(Logistic, SingularSystemIsAClearError) {
    Dataset d;
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (int i = 0; i < 200; i++) {
        const double x = unit(rng);
        d.add({1.0, x, 2 * x}, unit(rng) < x);  // the third column duplicates the second
    }
    LogisticOptions none;
    none.l2 = 0;
    EXPECT_NE(sqlstate_of([&] { fit_logistic(d, none); }).find("22000: learning: the system is singular"), std::string::npos);
    LogisticOptions some;
    some.l2 = 0.1;
    const LogisticFit fit = fit_logistic(d, some);
    // With a penalty the weight is shared equally between the duplicates (x and 2x: 1 to 2).
    EXPECT_NEAR(fit.coefficients[2], 2 * fit.coefficients[1], 1e-6);
}

TEST(Logistic, NoPositivesOrNoNegativesIsAnError) {
    Dataset d;
    d.add({1.0, 0.5}, false);
    d.add({1.0, 0.7}, false);
    EXPECT_NE(sqlstate_of([&] { fit_logistic(d, {}); }).find("no lead converted"), std::string::npos);
    Dataset e;
    EXPECT_NE(sqlstate_of([&] { fit_logistic(e, {}); }).find("no rows"), std::string::npos);
}

TEST(Logistic, NonConvergenceIsReported) {
    const Dataset d = planted({0.2, 1.0}, 500, 9);
    LogisticOptions o;
    o.max_iterations = 1;
    o.tolerance = 1e-15;
    EXPECT_NE(sqlstate_of([&] { fit_logistic(d, o); }).find("did not converge in 1 iterations"), std::string::npos);
}

TEST(Accumulator, MergedHalvesEqualOnePassAndSerializationRoundTrips) {
    const Dataset d = planted({-0.5, 1.0, 0.5}, 1000, 5);
    const std::vector<double> beta = {0.1, 0.2, -0.3};
    NewtonAccumulator all(beta), first(beta), second(beta);
    for (std::size_t r = 0; r < d.rows(); r++) {
        all.add(&d.x[r * d.width], d.converted[r]);
        (r % 2 ? first : second).add(&d.x[r * d.width], d.converted[r]);
    }
    const std::string bytes = first.serialize();
    NewtonAccumulator merged = NewtonAccumulator::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()),
                                                              bytes.size());
    merged.merge(second);
    LogisticOptions o;
    const NewtonStep a = NewtonStep::from(all, o), b = NewtonStep::from(merged, o);
    for (std::size_t j = 0; j < beta.size(); j++) EXPECT_NEAR(a.coefficients[j], b.coefficients[j], 1e-9);
    EXPECT_DOUBLE_EQ(all.rows(), merged.rows());
    EXPECT_NEAR(all.log_likelihood(), merged.log_likelihood(), 1e-6);
    EXPECT_NE(sqlstate_of([&] { NewtonAccumulator::deserialize(reinterpret_cast<const unsigned char*>("x"), 1); }),
              "no error");
    NewtonAccumulator other({1.0, 1.0, 1.0});
    EXPECT_NE(sqlstate_of([&] { merged.merge(other); }), "no error");
}

TEST(NaiveBayesTest, RecoversPlantedFrequenciesAndRanks) {
    // P(source = web | converted) = 0.8, P(web | not) = 0.3; a second field is noise.
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    NaiveBayes nb(2, 1.0);
    for (int i = 0; i < 20000; i++) {
        const bool won = unit(rng) < 0.25;
        const bool web = unit(rng) < (won ? 0.8 : 0.3);
        nb.add({web ? "web" : "event", unit(rng) < 0.5 ? "a" : ""}, won);
    }
    // log-odds of "web" = log(0.8 / 0.3), of "event" = log(0.2 / 0.7); tolerance 0.05
    EXPECT_NEAR(nb.log_odds(0, "web"), std::log(0.8 / 0.3), 0.05);
    EXPECT_NEAR(nb.log_odds(0, "event"), std::log(0.2 / 0.7), 0.05);
    EXPECT_NEAR(nb.log_odds(1, ""), 0.0, 0.05);  // missing is a category of its own, here uninformative
    EXPECT_GT(nb.probability({"web", "a"}), nb.probability({"event", "a"}));
    // An unseen value gets the smoothed, neutral-ish estimate rather than zero.
    EXPECT_TRUE(std::isfinite(nb.log_odds(0, "never seen")));
    NaiveBayes half(2), rest(2);
    half.add({"web", "a"}, true);
    rest.add({"event", ""}, false);
    half.merge(rest);
    EXPECT_EQ(half.positives(), 1);
    EXPECT_EQ(half.negatives(), 1);
}

TEST(Auc, TiesAreAveragedAndUndefinedIsNaN) {
    // positives {50, 30, 20}, negatives {50, 30, 10, 0, 0}: 11 of 15 pairs
    EXPECT_NEAR(roc_auc({50, 50, 30, 30, 20, 10, 0, 0}, {true, false, true, false, true, false, false, false}),
                11.0 / 15.0, 1e-12);
    EXPECT_DOUBLE_EQ(roc_auc({1, 2, 3}, {false, false, true}), 1.0);
    EXPECT_DOUBLE_EQ(roc_auc({1, 1, 1}, {false, true, false}), 0.5);
    EXPECT_TRUE(std::isnan(roc_auc({1, 2}, {false, false})));
}
