// Learning point values from outcomes: L2-regularised logistic regression by Newton's method
// (IRLS) with streaming, mergeable sufficient statistics (one aggregate pass per iteration),
// a naive-Bayes scorer over categorical fields, and ROC AUC.
#pragma once
#include "guard.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "types.hpp"

namespace leadscore::learn {

struct LogisticOptions {
    double l2 = 1.0;                 // penalty on every coefficient but the intercept (index 0)
    int max_iterations = 50;
    double tolerance = 1e-8;         // on the largest coefficient change of a Newton step
};

// Gradient and Hessian of the log-likelihood at fixed coefficients, summed over rows. Rows can
// be added in any order and accumulators merged (parallel aggregates).
class NewtonAccumulator {
public:
    NewtonAccumulator() = default;
    explicit NewtonAccumulator(std::vector<double> coefficients);
    // x holds one value per coefficient; by convention x[0] = 1 (the intercept).
    void add(const double* x, bool converted, double weight = 1.0);
    void merge(const NewtonAccumulator& other);
    std::string serialize() const;
    static NewtonAccumulator deserialize(const unsigned char* data, std::size_t len);

    std::size_t size() const { return beta_.size(); }
    const std::vector<double>& coefficients() const { return beta_; }
    double rows() const { return rows_; }
    double positives() const { return positives_; }
    double log_likelihood() const { return loglik_; }
    // Largest |x·beta| seen: a sign of separation when it keeps growing.
    double max_margin() const { return max_margin_; }
    // Number of rows the current coefficients classify with probability within 1e-9 of their label.
    double saturated() const { return saturated_; }

private:
    friend struct NewtonStep;
    std::vector<double> beta_, gradient_, hessian_;  // hessian: full p x p, row-major
    double rows_ = 0, positives_ = 0, loglik_ = 0, max_margin_ = 0, saturated_ = 0;
};

struct NewtonStep {
    std::vector<double> coefficients;  // after the step
    double max_change = 0;
    // Solves (H + l2 I) d = g - l2 beta with a Cholesky factorisation; throws UserError on a
    // singular system (e.g. a constant or duplicated feature without regularisation).
    static NewtonStep from(const NewtonAccumulator& acc, const LogisticOptions& options);
};

struct LogisticFit {
    std::vector<double> coefficients;
    int iterations = 0;
    double log_likelihood = 0;
};

// Rows of a design matrix kept in memory (tests, small data, cross-validation folds).
struct Dataset {
    std::size_t width = 0;              // coefficients per row, intercept column included
    std::vector<double> x;              // row-major
    std::vector<bool> converted;
    std::size_t rows() const { return converted.size(); }
    void add(const std::vector<double>& row, bool y);
};

// Newton iterations until the coefficients settle. Throws UserError (with SQLSTATE) when the
// data has no positives or no negatives, on separation without regularisation, on a singular
// system, and when it does not converge within max_iterations.
LogisticFit fit_logistic(const Dataset& data, const LogisticOptions& options);

double sigmoid(double z);

// Naive Bayes in the style of Odoo's predictive lead scoring: for every field, the frequency
// of each value among converted and among other leads, with Laplace smoothing; a missing value
// is a category of its own (pass "" or any token the caller maps missing values to).
class NaiveBayes {
public:
    explicit NaiveBayes(std::size_t fields = 0, double smoothing = 1.0) : fields_(fields), alpha_(smoothing),
        counts_(fields) {}
    void add(const std::vector<std::string>& values, bool converted);
    void merge(const NaiveBayes& other);
    // Posterior probability of conversion.
    double probability(const std::vector<std::string>& values) const;
    // Log-odds contribution of one field's value (what a point value could be derived from).
    double log_odds(std::size_t field, const std::string& value) const;
    double positives() const { return pos_; }
    double negatives() const { return neg_; }

private:
    std::size_t fields_;
    double alpha_;
    double pos_ = 0, neg_ = 0;
    std::vector<std::map<std::string, std::pair<double, double>>> counts_;  // value -> (pos, neg)
};

// ROC AUC with tie-averaged ranks; NaN when there are no positives or no negatives.
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& converted);

}  // namespace leadscore::learn
