// Points text: parsing never crashes, and what parses formats back to the same value.
#include <cstdint>
#include <string>

#include "core/decimal.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::string reason;
    auto v = leadscore::parse_points(text, &reason);
    if (!v) {
        FUZZ_CHECK(!reason.empty());
        return 0;
    }
    const std::string formatted = leadscore::format_points(*v);
    auto again = leadscore::parse_points(formatted, &reason);
    FUZZ_CHECK(again && *again == *v);
    FUZZ_CHECK(leadscore::format_points(*again) == formatted);
    return 0;
}
