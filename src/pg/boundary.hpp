// The error boundary between PostgreSQL and C++ (rules: docs/architecture.md, "The error boundary").
// Include core and standard headers before this file: postgres.h defines macros
// (snprintf, Min, Max ...) that must not leak into them.
#pragma once

#include <functional>
#include <type_traits>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace leadscore::pg {

// A PostgreSQL error caught by pg_guard, travelling up through C++ frames as an exception.
class PgError : public std::exception {
public:
    explicit PgError(ErrorData* data) : data_(data) {}
    PgError(PgError&& o) noexcept : data_(o.data_) { o.data_ = nullptr; }
    PgError(const PgError&) = delete;
    const char* what() const noexcept override { return data_ && data_->message ? data_->message : "postgres error"; }
    ErrorData* release() {
        ErrorData* d = data_;
        data_ = nullptr;
        return d;
    }

private:
    ErrorData* data_;
};

// Runs code that calls PostgreSQL: an ERROR raised inside becomes a PgError exception
// instead of a longjmp across C++ frames. The callable must not own C++ resources itself.
// Type-erased without std::function: no allocation per call on the per-row paths.
void pg_guard_call(void (*invoke)(void*), void* body);
template <class F>
inline void pg_guard(F&& body) {
    pg_guard_call([](void* b) { (*static_cast<std::remove_reference_t<F>*>(b))(); },
                  const_cast<void*>(static_cast<const void*>(&body)));
}

// Runs C++ code from inside a PostgreSQL callback (memory-context reset, relcache, transaction
// callbacks), the counterpart of pg_guard: no C++ exception leaves it. One that escapes body is
// reported with ereport at elevel after every C++ frame is gone (WARNING where the callback
// must not fail, such as at abort).
void cxx_guard_call(int elevel, void (*invoke)(void*), void* body);
template <class F>
inline void cxx_guard(int elevel, F&& body) {
    cxx_guard_call(elevel, [](void* b) { (*static_cast<std::remove_reference_t<F>*>(b))(); },
                   const_cast<void*>(static_cast<const void*>(&body)));
}

// A C++ object owned by a memory context: deleted when the context is reset or deleted
// (aggregate states, per-call-site caches).
template <class T>
T* new_owned_by_context(MemoryContext context) {
    T* object = new T();
    try {
        pg_guard([&] {
            MemoryContextCallback* cb =
                static_cast<MemoryContextCallback*>(MemoryContextAlloc(context, sizeof(MemoryContextCallback)));
            cb->func = [](void* p) { cxx_guard(WARNING, [p] { delete static_cast<T*>(p); }); };
            cb->arg = object;
            MemoryContextRegisterResetCallback(context, cb);
        });
    } catch (...) {
        delete object;
        throw;
    }
    return object;
}

// Runs body like pg_guard but reports a PostgreSQL error as its message instead of throwing;
// nullopt when body succeeded. For checks that re-raise the error in their own words.
std::optional<std::string> pg_error_message(const std::function<void()>& body);

// Calls an fmgr-style implementation, turning every C++ exception into ereport(ERROR).
Datum call_boundary(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo);

// Raises a user-facing error as a C++ exception (converted at the boundary).
[[noreturn]] void raise(const char* sqlstate, const std::string& message, const std::string& detail = std::string(),
                        const std::string& hint = std::string());

void check_for_interrupts();

}  // namespace leadscore::pg

// Declares an SQL-callable function whose body runs behind the C++ error boundary.
#define LEADSCORE_FUNCTION(fname)                                                        \
    extern "C" {                                                                         \
    PG_FUNCTION_INFO_V1(fname);                                                          \
    PGDLLEXPORT Datum fname(PG_FUNCTION_ARGS);                                           \
    }                                                                                    \
    static Datum fname##_impl(FunctionCallInfo fcinfo);                                  \
    Datum fname(PG_FUNCTION_ARGS) { return leadscore::pg::call_boundary(fname##_impl, fcinfo); } \
    static Datum fname##_impl(FunctionCallInfo fcinfo)
