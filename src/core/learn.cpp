#include "learn.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace leadscore::learn {

namespace {

constexpr unsigned char kAccumulatorVersion = 1;
// Invalid data error: the data given cannot be learned from.
constexpr const char* kDataException = "22000";

void put_double(std::string& out, double v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }

double log1pexp(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

}  // namespace

double sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
    const double e = std::exp(z);
    return e / (1.0 + e);
}

NewtonAccumulator::NewtonAccumulator(std::vector<double> coefficients)
    : beta_(std::move(coefficients)), gradient_(beta_.size(), 0.0), hessian_(beta_.size() * beta_.size(), 0.0) {}

void NewtonAccumulator::add(const double* x, bool converted, double weight) {
    const std::size_t p = beta_.size();
    double z = 0;
    for (std::size_t j = 0; j < p; j++) z += x[j] * beta_[j];
    const double mu = sigmoid(z);
    const double y = converted ? 1.0 : 0.0;
    // log-likelihood y z - log(1 + e^z), stable for large |z|
    loglik_ += weight * (y * z - log1pexp(z));
    const double residual = weight * (y - mu);
    const double w = weight * mu * (1.0 - mu);
    for (std::size_t j = 0; j < p; j++) {
        if (x[j] == 0) continue;
        gradient_[j] += residual * x[j];
        const double wx = w * x[j];
        double* row = &hessian_[j * p];
        for (std::size_t k = 0; k <= j; k++) row[k] += wx * x[k];
    }
    rows_ += weight;
    if (converted) positives_ += weight;
    max_margin_ = std::max(max_margin_, std::fabs(z));
    if ((converted && mu > 1 - 1e-9) || (!converted && mu < 1e-9)) saturated_ += weight;
}

void NewtonAccumulator::merge(const NewtonAccumulator& other) {
    if (other.beta_.empty()) return;
    if (beta_.empty()) {
        *this = other;
        return;
    }
    if (other.beta_ != beta_)
        throw UserError(sqlstate::kInvalidParameterValue, "learning: partial states of different iterations cannot be merged");
    for (std::size_t i = 0; i < gradient_.size(); i++) gradient_[i] += other.gradient_[i];
    for (std::size_t i = 0; i < hessian_.size(); i++) hessian_[i] += other.hessian_[i];
    rows_ += other.rows_;
    positives_ += other.positives_;
    loglik_ += other.loglik_;
    max_margin_ = std::max(max_margin_, other.max_margin_);
    saturated_ += other.saturated_;
}

std::string NewtonAccumulator::serialize() const {
    std::string out;
    out.push_back(static_cast<char>(kAccumulatorVersion));
    const std::uint32_t p = static_cast<std::uint32_t>(beta_.size());
    out.append(reinterpret_cast<const char*>(&p), sizeof p);
    for (double v : beta_) put_double(out, v);
    for (double v : gradient_) put_double(out, v);
    for (double v : hessian_) put_double(out, v);
    for (double v : {rows_, positives_, loglik_, max_margin_, saturated_}) put_double(out, v);
    return out;
}

NewtonAccumulator NewtonAccumulator::deserialize(const unsigned char* data, std::size_t len) {
    auto corrupt = [] { throw UserError(sqlstate::kDataCorrupted, "learning: aggregate state is corrupted"); };
    if (len < 1 + 4 || data[0] != kAccumulatorVersion) corrupt();
    std::uint32_t p;
    std::memcpy(&p, data + 1, sizeof p);
    const std::size_t doubles = static_cast<std::size_t>(p) * 2 + static_cast<std::size_t>(p) * p + 5;
    if (p > 100000 || len != 1 + 4 + doubles * sizeof(double)) corrupt();
    std::vector<double> all(doubles);
    std::memcpy(all.data(), data + 5, doubles * sizeof(double));
    NewtonAccumulator acc(std::vector<double>(all.begin(), all.begin() + p));
    std::copy(all.begin() + p, all.begin() + 2 * p, acc.gradient_.begin());
    std::copy(all.begin() + 2 * p, all.begin() + 2 * p + static_cast<std::ptrdiff_t>(p) * p, acc.hessian_.begin());
    const double* tail = all.data() + 2 * p + static_cast<std::size_t>(p) * p;
    acc.rows_ = tail[0];
    acc.positives_ = tail[1];
    acc.loglik_ = tail[2];
    acc.max_margin_ = tail[3];
    acc.saturated_ = tail[4];
    return acc;
}

NewtonStep NewtonStep::from(const NewtonAccumulator& acc, const LogisticOptions& options) {
    const std::size_t p = acc.beta_.size();
    // Penalised system: A = H + l2 I (intercept unpenalised), b = g - l2 beta.
    std::vector<double> a(p * p, 0.0), b(p);
    for (std::size_t j = 0; j < p; j++) {
        for (std::size_t k = 0; k <= j; k++) a[j * p + k] = acc.hessian_[j * p + k];
        const double l2 = j == 0 ? 0.0 : options.l2;
        a[j * p + j] += l2;
        b[j] = acc.gradient_[j] - l2 * acc.beta_[j];
    }
    // Cholesky A = L L^T in the lower triangle; a pivot that is not clearly positive means the
    // system is singular (a feature that is constant or a combination of others).
    double scale = 0;
    for (std::size_t j = 0; j < p; j++) scale = std::max(scale, std::fabs(a[j * p + j]));
    const double eps = std::max(scale, 1.0) * 1e-12;
    for (std::size_t j = 0; j < p; j++) {
        double d = a[j * p + j];
        for (std::size_t k = 0; k < j; k++) d -= a[j * p + k] * a[j * p + k];
        if (!(d > eps))
            throw UserError(kDataException,
                            "learning: the system is singular at feature " + std::to_string(j) +
                                " (a feature is constant or duplicates others)",
                            "", "Remove the feature or use a positive l2 penalty.");
        const double l = std::sqrt(d);
        a[j * p + j] = l;
        for (std::size_t i = j + 1; i < p; i++) {
            double s = a[i * p + j];
            for (std::size_t k = 0; k < j; k++) s -= a[i * p + k] * a[j * p + k];
            a[i * p + j] = s / l;
        }
    }
    std::vector<double> y(p), d(p);
    for (std::size_t i = 0; i < p; i++) {
        double s = b[i];
        for (std::size_t k = 0; k < i; k++) s -= a[i * p + k] * y[k];
        y[i] = s / a[i * p + i];
    }
    for (std::size_t i = p; i-- > 0;) {
        double s = y[i];
        for (std::size_t k = i + 1; k < p; k++) s -= a[k * p + i] * d[k];
        d[i] = s / a[i * p + i];
    }
    NewtonStep step;
    step.coefficients = acc.beta_;
    for (std::size_t j = 0; j < p; j++) {
        step.coefficients[j] += d[j];
        step.max_change = std::max(step.max_change, std::fabs(d[j]));
    }
    return step;
}

void Dataset::add(const std::vector<double>& row, bool y) {
    if (width == 0) width = row.size();
    if (row.size() != width) throw UserError(sqlstate::kInvalidParameterValue, "learning: rows of different widths");
    x.insert(x.end(), row.begin(), row.end());
    converted.push_back(y);
}

LogisticFit fit_logistic(const Dataset& data, const LogisticOptions& options) {
    if (data.rows() == 0 || data.width == 0)
        throw UserError(kDataException, "learning: there are no rows to learn from");
    const auto positives = static_cast<std::size_t>(std::count(data.converted.begin(), data.converted.end(), true));
    if (positives == 0 || positives == data.rows())
        throw UserError(kDataException,
                        positives == 0 ? "learning: no lead converted: nothing to learn from"
                                       : "learning: every lead converted: nothing to learn from");
    if (!(options.l2 >= 0)) throw UserError(sqlstate::kInvalidParameterValue, "learning: l2 must be >= 0");
    std::vector<double> beta(data.width, 0.0);
    // Start the intercept at the base rate's log-odds.
    const double rate = static_cast<double>(positives) / static_cast<double>(data.rows());
    beta[0] = std::log(rate / (1 - rate));
    double previous_margin = 0;
    for (int it = 1; it <= options.max_iterations; it++) {
        NewtonAccumulator acc(beta);
        for (std::size_t r = 0; r < data.rows(); r++) acc.add(&data.x[r * data.width], data.converted[r]);
        // Without a penalty, separable data drives the coefficients to infinity: every row ends
        // up predicted with certainty while the margins keep growing.
        if (options.l2 == 0 && it > 3 && acc.saturated() >= acc.rows() && acc.max_margin() > previous_margin)
            throw UserError(kDataException, "learning: the outcomes are perfectly separated by the features",
                            "The coefficients would grow without bound.", "Use a positive l2 penalty.");
        previous_margin = acc.max_margin();
        NewtonStep step = NewtonStep::from(acc, options);
        beta = step.coefficients;
        for (double b : beta)
            if (!std::isfinite(b))
                throw UserError(kDataException, "learning: the coefficients diverged",
                                "", "Use a positive l2 penalty.");
        if (step.max_change < options.tolerance) {
            NewtonAccumulator last(beta);
            for (std::size_t r = 0; r < data.rows(); r++) last.add(&data.x[r * data.width], data.converted[r]);
            return LogisticFit{beta, it, last.log_likelihood()};
        }
    }
    throw UserError(kDataException,
                    "learning: logistic regression did not converge in " + std::to_string(options.max_iterations) +
                        " iterations",
                    "", "Raise max_iterations or the l2 penalty.");
}

void NaiveBayes::add(const std::vector<std::string>& values, bool converted) {
    if (values.size() != fields_) throw UserError(sqlstate::kInvalidParameterValue, "learning: wrong number of fields");
    for (std::size_t f = 0; f < fields_; f++) {
        auto& c = counts_[f][values[f]];
        (converted ? c.first : c.second) += 1;
    }
    (converted ? pos_ : neg_) += 1;
}

void NaiveBayes::merge(const NaiveBayes& other) {
    if (other.fields_ != fields_) throw UserError(sqlstate::kInvalidParameterValue, "learning: different fields");
    for (std::size_t f = 0; f < fields_; f++)
        for (const auto& [v, c] : other.counts_[f]) {
            auto& mine = counts_[f][v];
            mine.first += c.first;
            mine.second += c.second;
        }
    pos_ += other.pos_;
    neg_ += other.neg_;
}

double NaiveBayes::log_odds(std::size_t field, const std::string& value) const {
    const auto& m = counts_.at(field);
    const double levels = static_cast<double>(m.size() + (m.count(value) ? 0 : 1));
    double p = 0, n = 0;
    if (auto it = m.find(value); it != m.end()) {
        p = it->second.first;
        n = it->second.second;
    }
    const double p_given_pos = (p + alpha_) / (pos_ + alpha_ * levels);
    const double p_given_neg = (n + alpha_) / (neg_ + alpha_ * levels);
    return std::log(p_given_pos / p_given_neg);
}

double NaiveBayes::probability(const std::vector<std::string>& values) const {
    if (pos_ == 0 || neg_ == 0) return std::numeric_limits<double>::quiet_NaN();
    double z = std::log(pos_ / neg_);
    for (std::size_t f = 0; f < fields_ && f < values.size(); f++) z += log_odds(f, values[f]);
    return sigmoid(z);
}

double roc_auc(const std::vector<double>& scores, const std::vector<bool>& converted) {
    const std::size_t n = scores.size();
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
    double rank_sum = 0, pos = 0;
    for (std::size_t i = 0; i < n;) {
        std::size_t j = i;
        while (j < n && scores[order[j]] == scores[order[i]]) j++;
        const double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
        for (std::size_t k = i; k < j; k++)
            if (converted[order[k]]) {
                rank_sum += average_rank;
                pos += 1;
            }
        i = j;
    }
    const double neg = static_cast<double>(n) - pos;
    if (pos == 0 || neg == 0) return std::numeric_limits<double>::quiet_NaN();
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

}  // namespace leadscore::learn
