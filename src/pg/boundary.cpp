// The error boundary: PostgreSQL errors into C++ exceptions (pg_guard) and back (call_boundary, cxx_guard).
#include <cstring>
#include <exception>
#include <new>

#include "pg/boundary.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/builtins.h"
}

namespace leadscore::pg {

void pg_guard_call(void (*invoke)(void*), void* body) {
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData* volatile caught = nullptr;
    // A C++ exception must not cross PG_TRY: it would leave PG_exception_stack dangling.
    std::exception_ptr cxx_error;
    PG_TRY();
    {
        try {
            invoke(body);
        } catch (...) {
            cxx_error = std::current_exception();
        }
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller_context);
        caught = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    if (caught) throw PgError(caught);
    if (cxx_error) std::rethrow_exception(cxx_error);
}

std::optional<std::string> pg_error_message(const std::function<void()>& body) {
    try {
        pg_guard(body);
    } catch (PgError& e) {
        ErrorData* d = e.release();
        std::string message = d->message ? d->message : "";
        FreeErrorData(d);
        return message;
    }
    return std::nullopt;
}

namespace {

int sqlstate_code(const char* s) {
    if (!s || std::strlen(s) != 5) return ERRCODE_INTERNAL_ERROR;
    return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

void copy_bounded(char* dst, std::size_t cap, const char* src) {
    std::size_t n = std::strlen(src);
    if (n >= cap) n = cap - 1;
    std::memcpy(dst, src, n);
    dst[n] = '\0';
}

}  // namespace

Datum call_boundary(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo) {
    // Messages are copied into plain buffers inside the catch blocks; the ereport happens
    // only after every C++ frame and exception object is gone.
    ErrorData* pg_error = nullptr;
    static char message[4096];
    static char detail[4096];
    static char hint[1024];
    char sqlstate[6] = "XX000";
    bool failed = false;
    try {
        return impl(fcinfo);
    } catch (PgError& e) {
        pg_error = e.release();
        failed = true;
    } catch (const UserError& e) {
        copy_bounded(message, sizeof(message), e.what());
        copy_bounded(detail, sizeof(detail), e.detail().c_str());
        copy_bounded(hint, sizeof(hint), e.hint().c_str());
        copy_bounded(sqlstate, sizeof(sqlstate), e.sqlstate().c_str());
        failed = true;
    } catch (const std::bad_alloc&) {
        copy_bounded(message, sizeof(message), "leadscore: out of memory");
        detail[0] = hint[0] = '\0';
        copy_bounded(sqlstate, sizeof(sqlstate), "53200");
        failed = true;
    } catch (const std::exception& e) {
        copy_bounded(message, sizeof(message), "leadscore internal error: ");
        copy_bounded(message + std::strlen(message), sizeof(message) - std::strlen(message), e.what());
        detail[0] = hint[0] = '\0';
        failed = true;
    } catch (...) {
        copy_bounded(message, sizeof(message), "leadscore internal error: unknown exception");
        detail[0] = hint[0] = '\0';
        failed = true;
    }
    if (pg_error) ReThrowError(pg_error);
    if (failed)
        ereport(ERROR, (errcode(sqlstate_code(sqlstate)), errmsg("%s", message),
                        detail[0] ? errdetail("%s", detail) : 0, hint[0] ? errhint("%s", hint) : 0));
    return (Datum)0;
}

[[noreturn]] void raise(const char* sqlstate, const std::string& message, const std::string& detail,
                        const std::string& hint) {
    throw UserError(sqlstate, message, detail, hint);
}

void check_for_interrupts() {
    if (INTERRUPTS_PENDING_CONDITION()) pg_guard([] { CHECK_FOR_INTERRUPTS(); });
}

void cxx_guard_call(int elevel, void (*invoke)(void*), void* body) {
    static char message[2048];
    ErrorData* pg_error = nullptr;
    bool failed = false;
    try {
        invoke(body);
    } catch (PgError& e) {
        pg_error = e.release();
        failed = true;
    } catch (const std::exception& e) {
        copy_bounded(message, sizeof(message), e.what());
        failed = true;
    } catch (...) {
        copy_bounded(message, sizeof(message), "unknown exception");
        failed = true;
    }
    if (!failed) return;
    if (pg_error && elevel >= ERROR) ReThrowError(pg_error);
    if (pg_error) {
        copy_bounded(message, sizeof(message), pg_error->message ? pg_error->message : "postgres error");
        FreeErrorData(pg_error);
    }
    ereport(elevel, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("leadscore: %s", message)));
}

}  // namespace leadscore::pg
