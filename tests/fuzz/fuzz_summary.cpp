// Stored summaries: any bytes either decode or raise a UserError; what decodes encodes back
// to an equal summary (settled pattern-rule state included).
#include <cstdint>

#include "core/summary.hpp"
#include "fuzz_common.hpp"

using namespace leadscore;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Summary s;
    if (!expect_ok_or_user_error([&] { s = Summary::deserialize(data, size); })) return 0;
    const std::string bytes = s.serialize();
    Summary back = Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    FUZZ_CHECK(back == s);
    FUZZ_CHECK(back.serialize() == bytes);
    // Only summaries built from raw rows are merged (aggregate states).
    if (s.settled()) return 0;
    Summary merged;
    merged.merge(s);
    FUZZ_CHECK(merged == s);
    return 0;
}
