// leadscore.logit_step: one Newton (IRLS) iteration of L2-regularised logistic regression as a
// parallel-safe aggregate over rows of binary features. The SQL driver calls it until the
// coefficients settle; memory is O(features^2), not O(rows).
#include <cstring>
#include <unordered_map>

#include "core/learn.hpp"
#include "pg/datum.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

using namespace leadscore;
using namespace leadscore::pg;

namespace {

struct LogitState {
    learn::NewtonAccumulator acc;
    double l2 = 1.0;
    std::unordered_map<std::string, std::size_t> index;  // feature name -> coefficient position
    std::vector<double> row;
};

LogitState* new_state(MemoryContext aggcontext) { return new_owned_by_context<LogitState>(aggcontext); }

MemoryContext agg_context(FunctionCallInfo fcinfo) {
    MemoryContext c = nullptr;
    if (!AggCheckCallContext(fcinfo, &c))
        raise(sqlstate::kFeatureNotSupported, "leadscore.logit_step must be called as an aggregate");
    return c;
}

// A text[] argument's non-NULL elements.
std::vector<std::string> text_array(Datum d) {
    std::vector<std::string> out;
    for (auto& e : text_array_elements(d))
        if (e) out.push_back(std::move(*e));
    return out;
}

std::vector<double> float_array(Datum d) {
    std::vector<double> out;
    pg_guard([&] {
        ArrayType* a = DatumGetArrayTypeP(d);
        Datum* elems;
        bool* nulls;
        int n;
        deconstruct_array(a, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
        for (int i = 0; i < n; i++) out.push_back(nulls[i] ? 0.0 : DatumGetFloat8(elems[i]));
    });
    return out;
}

}  // namespace

// logit_step_transition(state, names text[], betas float8[], l2 float8, features text[], converted bool)
LEADSCORE_FUNCTION(leadscore_logit_step_transition) {
    MemoryContext aggcontext = agg_context(fcinfo);
    LogitState* s = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<LogitState*>(PG_GETARG_POINTER(0));
    if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
        raise(sqlstate::kInvalidParameterValue, "leadscore.logit_step: names, coefficients and l2 must not be NULL");
    if (PG_ARGISNULL(5)) {
        if (s) PG_RETURN_POINTER(s);
        PG_RETURN_NULL();
    }
    if (!s) {
        s = new_state(aggcontext);
        const std::vector<std::string> names = text_array(PG_GETARG_DATUM(1));
        std::vector<double> betas = float_array(PG_GETARG_DATUM(2));
        if (names.empty() || names.size() != betas.size())
            raise(sqlstate::kInvalidParameterValue,
                  "leadscore.logit_step: names and coefficients must be non-empty arrays of the same length");
        for (std::size_t i = 0; i < names.size(); i++) s->index.emplace(names[i], i);
        s->acc = learn::NewtonAccumulator(std::move(betas));
        s->l2 = PG_GETARG_FLOAT8(3);
        if (!(s->l2 >= 0)) raise(sqlstate::kInvalidParameterValue, "leadscore.logit_step: l2 must be >= 0");
        s->row.assign(names.size(), 0.0);
    }
    std::fill(s->row.begin(), s->row.end(), 0.0);
    s->row[0] = 1.0;  // the intercept
    if (!PG_ARGISNULL(4))
        for (const std::string& f : text_array(PG_GETARG_DATUM(4))) {
            auto it = s->index.find(f);
            if (it != s->index.end()) s->row[it->second] = 1.0;
        }
    s->acc.add(s->row.data(), PG_GETARG_BOOL(5));
    PG_RETURN_POINTER(s);
}

LEADSCORE_FUNCTION(leadscore_logit_step_combine) {
    MemoryContext aggcontext = agg_context(fcinfo);
    LogitState* a = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<LogitState*>(PG_GETARG_POINTER(0));
    LogitState* b = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<LogitState*>(PG_GETARG_POINTER(1));
    if (!b) {
        if (a) PG_RETURN_POINTER(a);
        PG_RETURN_NULL();
    }
    if (!a) {
        a = new_state(aggcontext);
        a->l2 = b->l2;
    }
    a->acc.merge(b->acc);
    PG_RETURN_POINTER(a);
}

LEADSCORE_FUNCTION(leadscore_logit_step_serialize) {
    agg_context(fcinfo);
    LogitState* s = reinterpret_cast<LogitState*>(PG_GETARG_POINTER(0));
    std::string out(reinterpret_cast<const char*>(&s->l2), sizeof s->l2);
    out += s->acc.serialize();
    bytea* b = nullptr;
    pg_guard([&] {
        b = static_cast<bytea*>(palloc(VARHDRSZ + out.size()));
        SET_VARSIZE(b, VARHDRSZ + out.size());
        std::memcpy(VARDATA(b), out.data(), out.size());
    });
    PG_RETURN_BYTEA_P(b);
}

LEADSCORE_FUNCTION(leadscore_logit_step_deserialize) {
    MemoryContext aggcontext = agg_context(fcinfo);
    const unsigned char* data = nullptr;
    std::size_t len = 0;
    pg_guard([&] {
        bytea* b = PG_GETARG_BYTEA_PP(0);
        data = reinterpret_cast<const unsigned char*>(VARDATA_ANY(b));
        len = VARSIZE_ANY_EXHDR(b);
    });
    if (len < sizeof(double)) raise(sqlstate::kDataCorrupted, "leadscore.logit_step: state is corrupted");
    LogitState* s = new_state(aggcontext);
    std::memcpy(&s->l2, data, sizeof(double));
    s->acc = learn::NewtonAccumulator::deserialize(data + sizeof(double), len - sizeof(double));
    PG_RETURN_POINTER(s);
}

// Returns {max change, log-likelihood, rows, positives, new coefficients...}.
LEADSCORE_FUNCTION(leadscore_logit_step_final) {
    agg_context(fcinfo);
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    LogitState* s = reinterpret_cast<LogitState*>(PG_GETARG_POINTER(0));
    learn::LogisticOptions o;
    o.l2 = s->l2;
    const learn::NewtonStep step = learn::NewtonStep::from(s->acc, o);
    std::vector<Datum> values;
    values.push_back(Float8GetDatum(step.max_change));
    values.push_back(Float8GetDatum(s->acc.log_likelihood()));
    values.push_back(Float8GetDatum(s->acc.rows()));
    values.push_back(Float8GetDatum(s->acc.positives()));
    for (double b : step.coefficients) values.push_back(Float8GetDatum(b));
    ArrayType* result = nullptr;
    pg_guard([&] {
        result = construct_array(values.data(), static_cast<int>(values.size()), FLOAT8OID, 8, FLOAT8PASSBYVAL,
                                 TYPALIGN_DOUBLE);
    });
    PG_RETURN_ARRAYTYPE_P(result);
}
