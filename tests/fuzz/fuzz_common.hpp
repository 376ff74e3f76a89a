// Shared pieces of the libFuzzer targets: expected failures are UserError; anything else is
// a finding and aborts the run.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "core/types.hpp"

#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                 \
        }                                                                                 \
    } while (0)

// Runs body; a UserError is a clear error for the user and fine, anything else is a bug.
template <class F>
bool expect_ok_or_user_error(F&& body) {
    try {
        body();
        return true;
    } catch (const leadscore::UserError& e) {
        FUZZ_CHECK(!e.sqlstate().empty() && e.what()[0] != '\0');
        return false;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        std::abort();
    }
}
