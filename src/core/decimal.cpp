#include "decimal.hpp"

#include <cctype>
#include <cstdlib>

namespace leadscore {

namespace {

// The common form "-123.45" (at most 12 whole digits and 6 decimals) without allocating;
// nullopt sends every other text, and every error, to the general parser.
std::optional<MicroPoints> parse_plain_points(const std::string& text, MicroPoints max_magnitude) {
    const std::size_t n = text.size();
    std::size_t i = 0;
    const bool negative = n > 0 && text[0] == '-';
    if (negative) i++;
    std::int64_t whole = 0;
    int whole_digits = 0, decimals = 0;
    for (; i < n && text[i] >= '0' && text[i] <= '9'; i++, whole_digits++) {
        // Longer whole parts (below 1e12 points only with leading zeros) take the general path.
        if (whole_digits == 12) return std::nullopt;
        whole = whole * 10 + (text[i] - '0');
    }
    std::int64_t frac = 0;
    if (i < n && text[i] == '.') {
        for (i++; i < n && text[i] >= '0' && text[i] <= '9'; i++, decimals++) {
            if (decimals == 6) return std::nullopt;
            frac = frac * 10 + (text[i] - '0');
        }
        if (decimals == 0) return std::nullopt;
    }
    if (i != n || whole_digits == 0) return std::nullopt;
    for (int k = decimals; k < 6; k++) frac *= 10;
    const std::int64_t v = whole * kPointScale + frac;
    if (v > max_magnitude) return std::nullopt;
    return negative ? -v : v;
}

}  // namespace

std::optional<MicroPoints> parse_points(const std::string& text, std::string* reason, MicroPoints max_magnitude) {
    auto fail = [&](const char* why) -> std::optional<MicroPoints> {
        if (reason) *reason = why;
        return std::nullopt;
    };
    if (auto plain = parse_plain_points(text, max_magnitude)) return *plain;
    size_t i = 0, n = text.size();
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) i++;
    while (n > i && std::isspace(static_cast<unsigned char>(text[n - 1]))) n--;
    if (i == n) return fail("is empty");
    bool negative = false;
    if (text[i] == '+' || text[i] == '-') {
        negative = text[i] == '-';
        i++;
    }
    std::string lowered;
    for (size_t k = i; k < n; k++) lowered += static_cast<char>(std::tolower(static_cast<unsigned char>(text[k])));
    if (lowered == "nan" || lowered == "infinity" || lowered == "inf")
        return fail("must be a finite number (NaN and infinity are not allowed)");
    std::string digits;
    int point_pos = -1;
    long exponent = 0;
    bool any_digit = false;
    for (; i < n; i++) {
        char c = text[i];
        if (std::isdigit(static_cast<unsigned char>(c))) {
            digits += c;
            any_digit = true;
        } else if (c == '.' && point_pos < 0) {
            point_pos = static_cast<int>(digits.size());
        } else if ((c == 'e' || c == 'E') && any_digit) {
            i++;
            bool eneg = false;
            if (i < n && (text[i] == '+' || text[i] == '-')) {
                eneg = text[i] == '-';
                i++;
            }
            if (i == n) return fail("is not a number");
            for (; i < n; i++) {
                if (!std::isdigit(static_cast<unsigned char>(text[i]))) return fail("is not a number");
                exponent = exponent * 10 + (text[i] - '0');
                if (exponent > 100) return fail("is out of range");
            }
            if (eneg) exponent = -exponent;
            break;
        } else {
            return fail("is not a number");
        }
    }
    if (!any_digit) return fail("is not a number");
    if (point_pos < 0) point_pos = static_cast<int>(digits.size());
    // value = digits * 10^(exponent - (digits.size() - point_pos)); we want value * 10^6.
    long scale = exponent - static_cast<long>(digits.size() - point_pos) + 6;
    // strip leading zeros
    size_t first = digits.find_first_not_of('0');
    if (first == std::string::npos) return MicroPoints{0};
    digits = digits.substr(first);
    while (scale < 0) {
        if (digits.empty() || digits.back() != '0') return fail("has more than 6 decimal places");
        digits.pop_back();
        scale++;
        if (digits.empty()) return MicroPoints{0};
    }
    const char* const too_big = max_magnitude == kMaxPointsMagnitude ? "is out of range (at most 1e12 in magnitude)"
                                                                      : "is out of range";
    if (static_cast<long>(digits.size()) + scale > 19) return fail(too_big);
    WideSum v = 0;
    for (char c : digits) v = v * 10 + (c - '0');
    for (long k = 0; k < scale; k++) v *= 10;
    if (v > static_cast<WideSum>(max_magnitude)) return fail(too_big);
    MicroPoints out = static_cast<MicroPoints>(v);
    return negative ? -out : out;
}

std::string format_points(MicroPoints value) {
    bool negative = value < 0;
    unsigned long long mag = negative ? 0ULL - static_cast<unsigned long long>(value)
                                      : static_cast<unsigned long long>(value);
    unsigned long long whole = mag / kPointScale;
    unsigned long long frac = mag % kPointScale;
    std::string out = negative ? "-" : "";
    out += std::to_string(whole);
    if (frac) {
        std::string f = std::to_string(frac);
        f = std::string(6 - f.size(), '0') + f;
        while (!f.empty() && f.back() == '0') f.pop_back();
        out += "." + f;
    }
    return out;
}

ScaledPoints scaled_points(MicroPoints value) {
    ScaledPoints out{value, 6};
    while (out.scale > 0 && out.digits % 10 == 0) {
        out.digits /= 10;
        out.scale--;
    }
    return out;
}

MicroPoints narrow_points(WideSum sum, const char* what) {
    const WideSum limit = static_cast<WideSum>(INT64_MAX);
    if (sum > limit || sum < -limit)
        throw UserError(sqlstate::kNumericValueOutOfRange,
                        std::string(what) + " is out of range",
                        "leadscore scores are limited to about 9.2e12 points");
    return static_cast<MicroPoints>(sum);
}

}  // namespace leadscore
