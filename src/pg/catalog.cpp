#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_set>

#include "core/decimal.hpp"
#include "pg/catalog.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "utils/regproc.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_coerce.h"
#include "parser/parse_oper.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace leadscore::pg {

namespace {

// Backend-lifetime objects are never destroyed: C++ static destructors run at exit in an
// order that would let a cached model touch an already destroyed graveyard.
std::unordered_map<std::string, std::shared_ptr<CompiledModel>>& g_cache =
    *new std::unordered_map<std::string, std::shared_ptr<CompiledModel>>();
// Relations whose change (rule edits, DDL on tracked tables) drops the cache.
std::unordered_set<Oid>& g_watched = *new std::unordered_set<Oid>();
bool g_callbacks_registered = false;
std::uint64_t g_generation = 0;

void clear_cache() {
    g_cache.clear();
    g_generation++;
}

void relcache_callback(Datum, Oid relid) {
    if (relid == InvalidOid || g_watched.count(relid)) clear_cache();
}

void xact_callback(XactEvent event, void*) {
    if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
        clear_cache();
        reset_invoker_state();
    }
}

void subxact_callback(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
    if (event == SUBXACT_EVENT_ABORT_SUB) clear_cache();
}

// By name in the leadscore schema, without a USAGE check: triggers run with the invoker's rights.
Oid leadscore_relation_oid(const char* name) {
    Oid oid = InvalidOid;
    pg_guard([&] {
        const Oid schema = get_namespace_oid("leadscore", true);
        if (OidIsValid(schema)) oid = get_relname_relid(name, schema);
    });
    return oid;
}

void watch_rule_tables() {
    static const char* const kTables[] = {"model", "activity_rule", "fit_rule", "stage", "list_entry", "tracking"};
    for (const char* t : kTables) {
        Oid oid = leadscore_relation_oid(t);
        if (OidIsValid(oid)) g_watched.insert(oid);
    }
}

std::optional<MicroPoints> numeric_column(std::uint64_t row, int col, const std::string& label, const char* name) {
    auto text = spi_text(row, col);
    if (!text) return std::nullopt;
    return parse_rule_points(label, name, *text);
}

bool bool_column(std::uint64_t row, int col, bool fallback) {
    auto d = spi_datum(row, col);
    return d ? DatumGetBool(*d) : fallback;
}

std::vector<std::optional<std::string>> text_array_column(std::uint64_t row, int col) {
    std::vector<std::optional<std::string>> out;
    auto d = spi_datum(row, col);
    if (!d) return out;
    pg_guard([&] {
        ArrayType* arr = DatumGetArrayTypeP(*d);
        Datum* elems;
        bool* nulls;
        int n;
        deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
        for (int i = 0; i < n; i++) {
            if (nulls[i])
                out.emplace_back(std::nullopt);
            else
                out.emplace_back(std::string(VARDATA_ANY(elems[i]), VARSIZE_ANY_EXHDR(elems[i])));
        }
    });
    return out;
}

std::string rule_label(const char* table, const std::string& name, std::int64_t id) {
    return std::string(table) + " \"" + name + "\" (id " + std::to_string(id) + ")";
}

std::vector<std::string> load_list(const std::string& list, bool lower) {
    spi_exec("SELECT value FROM leadscore.list_entry WHERE list = $1", {{TEXTOID, list}}, true);
    std::vector<std::string> values;
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        std::string v = *spi_text(i, 1);
        if (lower)
            std::transform(v.begin(), v.end(), v.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        values.push_back(std::move(v));
    }
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return values;
}

std::string type_name(Oid type) {
    std::string out;
    pg_guard([&] { out = format_type_be(type); });
    return out;
}

int find_attribute(TupleDesc desc, const std::string& name) {
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (!att->attisdropped && name == NameStr(att->attname)) return i + 1;
    }
    return 0;
}

}  // namespace

namespace {
// Plans of dropped models are freed at the next safe point, not inside an invalidation callback.
std::vector<SPIPlanPtr>& g_plan_graveyard = *new std::vector<SPIPlanPtr>();

void free_dropped_plans() {
    while (!g_plan_graveyard.empty()) {
        SPIPlanPtr plan = g_plan_graveyard.back();
        g_plan_graveyard.pop_back();
        pg_guard([&] { SPI_freeplan(plan); });
    }
}
}  // namespace

TupleDesc relation_desc_copy(Oid relid) {
    TupleDesc desc = nullptr;
    pg_guard([&] {
        Relation rel = RelationIdGetRelation(relid);
        if (!RelationIsValid(rel)) elog(ERROR, "leadscore: tracked table %u is gone", relid);
        desc = CreateTupleDescCopy(RelationGetDescr(rel));
        RelationClose(rel);
    });
    return desc;
}

CompiledModel::~CompiledModel() {
    for (auto& [sql, plan] : plans) g_plan_graveyard.push_back(plan);
    if (context) MemoryContextDelete(context);
}

SPIPlanPtr cached_plan(CompiledModel& cm, const std::string& sql, const std::vector<Oid>& types) {
    auto it = cm.plans.find(sql);
    if (it != cm.plans.end()) return it->second;
    SPIPlanPtr plan = nullptr;
    std::vector<Oid> argtypes = types;
    pg_guard([&] {
        plan = SPI_prepare_cursor(sql.c_str(), static_cast<int>(argtypes.size()), argtypes.data(),
                                  CURSOR_OPT_GENERIC_PLAN);
        if (!plan) elog(ERROR, "leadscore: could not prepare: %s", sql.c_str());
        SPI_keepplan(plan);
    });
    cm.plans.emplace(sql, plan);
    return plan;
}

void register_cache_callbacks() {
    if (g_callbacks_registered) return;
    CacheRegisterRelcacheCallback(relcache_callback, (Datum)0);
    RegisterXactCallback(xact_callback, nullptr);
    RegisterSubXactCallback(subxact_callback, nullptr);
    g_callbacks_registered = true;
}

void invalidate_cache() { clear_cache(); }

void watch_relation(Oid relid) { g_watched.insert(relid); }

std::uint64_t cache_generation() { return g_generation; }

std::string relation_display_name(Oid relid) {
    std::string out;
    pg_guard([&] {
        char* nsp = get_namespace_name(get_rel_namespace(relid));
        char* rel = get_rel_name(relid);
        if (!rel) elog(ERROR, "leadscore: relation %u does not exist", relid);
        out = quote_qualified_identifier(nsp, rel);
    });
    return out;
}

void TextOutput::write(Datum d, std::string& out) const {
    char buf[MAXINT8LEN + 1];
    switch (type_) {
        case INT2OID:
            out.assign(buf, static_cast<std::size_t>(pg_itoa(DatumGetInt16(d), buf)));
            return;
        case INT4OID:
            out.assign(buf, static_cast<std::size_t>(pg_ltoa(DatumGetInt32(d), buf)));
            return;
        case INT8OID:
            out.assign(buf, static_cast<std::size_t>(pg_lltoa(DatumGetInt64(d), buf)));
            return;
        case TEXTOID:
        case VARCHAROID: {
            text* t = DatumGetTextPP(d);
            out.assign(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
            if (reinterpret_cast<Pointer>(t) != DatumGetPointer(d)) pfree(t);
            return;
        }
        default: {
            if (!ready_) {
                Oid fn;
                bool varlena;
                getTypeOutputInfo(type_, &fn, &varlena);
                fmgr_info(fn, &fn_);
                ready_ = true;
            }
            char* c = OutputFunctionCall(&fn_, d);
            out.assign(c);
            pfree(c);
        }
    }
}

char* key_to_cstring(Datum d, Oid type) {
    Oid out_fn;
    bool varlena;
    getTypeOutputInfo(type, &out_fn, &varlena);
    return OidOutputFunctionCall(out_fn, d);
}

bool is_supported_time_type(Oid type) {
    return type == TIMESTAMPTZOID || type == TIMESTAMPOID || type == DATEOID;
}

Timestamp to_core_time(Datum d, Oid type) {
    if (type == DATEOID) {
        DateADT day = DatumGetDateADT(d);
        if (DATE_NOT_FINITE(day)) return day < 0 ? kTimestampMin : kTimestampMax;
        return static_cast<Timestamp>(day) * kMicrosPerDay;
    }
    // timestamptz and timestamp share the representation; timestamp is read as UTC.
    TimestampTz t = DatumGetTimestampTz(d);
    if (t == DT_NOBEGIN) return kTimestampMin;
    if (t == DT_NOEND) return kTimestampMax;
    return t;
}

leadscore::Interval to_core_interval(Datum d) {
    ::Interval* iv = reinterpret_cast<::Interval*>(DatumGetPointer(d));
    leadscore::Interval out;
    out.months = iv->month;
    out.days = iv->day;
    out.micros = iv->time;
    return out;
}

int Matcher::column_index(const std::string& name) const {
    for (std::size_t i = 0; i < columns.size(); i++)
        if (columns[i].name == name) return static_cast<int>(i);
    return -1;
}

namespace {

struct PgValue {
    Datum datum;
    bool isnull;
};

struct PgOps {
    const CompiledCondition& c;
    bool is_null(const PgValue& v) const { return v.isnull; }
    bool binary(Op op, const PgValue& lhs, const PgValue& rhs) const {
        FmgrInfo* fn = const_cast<FmgrInfo*>(c.op == Op::Between && op == Op::Le ? &c.fn_upper : &c.fn);
        return DatumGetBool(FunctionCall2Coll(fn, c.collation, lhs.datum, rhs.datum));
    }
    bool in_list(const PgValue& v) const {
        char* s = OutputFunctionCall(const_cast<FmgrInfo*>(&c.out_fn), v.datum);
        bool found = std::binary_search(c.list_values.begin(), c.list_values.end(), std::string_view(s),
                                        [](std::string_view a, std::string_view b) { return a < b; });
        pfree(s);
        return found;
    }
    bool domain_in_list(const PgValue& v) const {
        char* s = OutputFunctionCall(const_cast<FmgrInfo*>(&c.out_fn), v.datum);
        char* at = std::strrchr(s, '@');
        bool found = false;
        if (at) {
            char* d = at + 1;
            std::size_t n = std::strlen(d);
            while (n > 0 && std::isspace(static_cast<unsigned char>(d[n - 1]))) n--;
            for (std::size_t i = 0; i < n; i++) d[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(d[i])));
            found = std::binary_search(c.list_values.begin(), c.list_values.end(), std::string_view(d, n),
                                       [](std::string_view a, std::string_view b) { return a < b; });
        }
        pfree(s);
        return found;
    }
};

}  // namespace

bool Matcher::evaluate(const CompiledCondition& c, Datum value, bool isnull) {
    PgOps ops{c};
    std::vector<PgValue>* operands = nullptr;
    // Operands are wrapped without allocation: PgValue and Datum have the same role.
    static thread_local std::vector<PgValue> scratch;
    scratch.clear();
    for (Datum d : c.operands) scratch.push_back(PgValue{d, false});
    operands = &scratch;
    return evaluate_condition(c.op, PgValue{value, isnull}, *operands, ops);
}

CompiledCondition compile_condition(const std::string& label, const std::string& relation_name, TupleDesc desc,
                                    const ConditionSpec& spec, Matcher& matcher, MemoryContext context) {
    CompiledCondition c;
    c.op = *spec.op;
    const int attno = find_attribute(desc, spec.attribute);
    if (attno == 0)
        raise(sqlstate::kUndefinedColumn,
              label + ": column \"" + spec.attribute + "\" does not exist in table " + relation_name,
              std::string(), "The attribute must name a column of the tracked table.");
    Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
    const Oid coltype = att->atttypid;
    c.collation = att->attcollation;
    int idx = matcher.column_index(spec.attribute);
    if (idx < 0) {
        matcher.columns.push_back(ColumnBinding{spec.attribute, coltype, att->attcollation});
        idx = static_cast<int>(matcher.columns.size()) - 1;
    }
    c.column = idx;
    const std::string where = label + ": column \"" + spec.attribute + "\" (" + type_name(coltype) + ")";

    if (c.op == Op::IsNull || c.op == Op::IsNotNull) return c;

    if (op_uses_list(c.op)) {
        const std::string& list = *spec.values.at(0);
        c.list_values = load_list(list, c.op == Op::DomainInList);
        if (c.list_values.empty())
            raise(sqlstate::kUndefinedObject, label + ": column \"value\" names unknown list \"" + list + "\"",
                  std::string(), "Add entries to leadscore.list_entry first.");
        pg_guard([&] {
            MemoryContext old = MemoryContextSwitchTo(context);
            Oid out_fn;
            bool varlena;
            getTypeOutputInfo(coltype, &out_fn, &varlena);
            fmgr_info_cxt(out_fn, &c.out_fn, context);
            MemoryContextSwitchTo(old);
        });
        return c;
    }

    const char* sql_op = op_sql_operator(c.op == Op::Between ? Op::Ge : c.op);
    auto lookup = [&](const char* opname, FmgrInfo* fn) -> Oid {
        Oid right = InvalidOid;
        bool found = false;
        const std::optional<std::string> pg_message = pg_error_message([&] {
                Operator tup = oper(nullptr, list_make1(makeString(pstrdup(opname))), coltype, coltype, true, -1);
                if (tup) {
                    Form_pg_operator form = (Form_pg_operator)GETSTRUCT(tup);
                    if (form->oprresult == BOOLOID && IsBinaryCoercible(coltype, form->oprleft)) {
                        right = form->oprright;
                        fmgr_info_cxt(form->oprcode, fn, context);
                        found = true;
                    }
                    ReleaseSysCache(tup);
                }
        });
        if (!found)
            raise(sqlstate::kDatatypeMismatch,
                  where + ": operator \"" + op_name(c.op) + "\" is not defined for this column type",
                  pg_message.value_or(std::string()));
        return right;
    };
    Oid right_type = lookup(sql_op, &c.fn);
    if (c.op == Op::Between) lookup("<=", &c.fn_upper);

    for (const auto& v : spec.values) {
        Datum d = 0;
        const std::optional<std::string> pg_message = pg_error_message([&] {
            MemoryContext old = MemoryContextSwitchTo(context);
            Oid input_fn, ioparam;
            getTypeInputInfo(right_type, &input_fn, &ioparam);
            d = OidInputFunctionCall(input_fn, const_cast<char*>(v->c_str()), ioparam, -1);
            MemoryContextSwitchTo(old);
        });
        if (pg_message)
            raise(sqlstate::kInvalidTextRepresentation,
                  where + ": value \"" + *v + "\" is not a valid " + type_name(right_type), *pg_message);
        c.operands.push_back(d);
    }

    if (c.op == Op::Regex || c.op == Op::RegexI) {
        const std::optional<std::string> pg_message = pg_error_message([&] {
            text* pattern = cstring_to_text(spec.values.at(0)->c_str());
            int flags = REG_ADVANCED | (c.op == Op::RegexI ? REG_ICASE : 0);
            RE_compile_and_cache(pattern, flags, OidIsValid(c.collation) ? c.collation : DEFAULT_COLLATION_OID);
        });
        if (pg_message)
            raise(sqlstate::kInvalidRegularExpression,
                  where + ": value \"" + *spec.values.at(0) + "\" is not a valid regular expression", *pg_message);
    }
    return c;
}

namespace {

std::optional<TrackingInfo> load_tracking(const std::string& model) {
    spi_exec(
        "SELECT activities::oid, lead_column::text, type_column::text, time_column::text, leads::oid, "
        "lead_key::text, state_table::text FROM leadscore.tracking WHERE model = $1",
        {{TEXTOID, model}}, true);
    if (SPI_processed == 0) return std::nullopt;
    TrackingInfo t;
    t.model = model;
    t.activities = DatumGetObjectId(*spi_datum(0, 1));
    t.lead_column = *spi_text(0, 2);
    t.type_column = *spi_text(0, 3);
    t.time_column = *spi_text(0, 4);
    if (auto l = spi_datum(0, 5)) t.leads = DatumGetObjectId(*l);
    if (auto k = spi_text(0, 6)) t.lead_key = *k;
    t.state_table = *spi_text(0, 7);
    t.activities_name = relation_display_name(t.activities);
    if (OidIsValid(t.leads)) t.leads_name = relation_display_name(t.leads);
    pg_guard([&] {
        AttrNumber lead_att = get_attnum(t.activities, t.lead_column.c_str());
        AttrNumber time_att = get_attnum(t.activities, t.time_column.c_str());
        if (lead_att == InvalidAttrNumber || time_att == InvalidAttrNumber)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("leadscore: a tracked column of model \"%s\" no longer exists in %s",
                                   model.c_str(), t.activities_name.c_str()),
                            errhint("Run leadscore.untrack('%s') and track the model again.", model.c_str())));
        t.key_type = get_atttype(t.activities, lead_att);
        t.time_type = get_atttype(t.activities, time_att);
    });
    t.key_type_name = type_name(t.key_type);
    g_watched.insert(t.activities);
    if (OidIsValid(t.leads)) g_watched.insert(t.leads);
    return t;
}

std::unique_ptr<CompiledModel> load_model(const std::string& name, const std::string& tables_from) {
    auto cm = std::make_unique<CompiledModel>();
    pg_guard([&] {
        cm->context = AllocSetContextCreate(CacheMemoryContext, "leadscore model", ALLOCSET_SMALL_SIZES);
    });
    ModelSpec spec;
    spec.name = name;
    spi_exec("SELECT score_min::text, score_max::text FROM leadscore.model WHERE name = $1", {{TEXTOID, name}}, true);
    if (SPI_processed == 0)
        raise(sqlstate::kUndefinedObject, "leadscore model \"" + name + "\" does not exist", std::string(),
              "Insert it into leadscore.model first.");
    const std::string model_label = "model \"" + name + "\"";
    spec.score_min = numeric_column(0, 1, model_label, "score_min");
    spec.score_max = numeric_column(0, 2, model_label, "score_max");

    std::vector<ActivityRuleSpec> activity_rules;
    spi_exec(
        "SELECT id, name, activity_type, attribute, op, value, points::text, once, max_count, max_points::text, "
        "expires_after, half_life, disqualify, enabled FROM leadscore.activity_rule WHERE model = $1 ORDER BY id",
        {{TEXTOID, name}}, true);
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        ActivityRuleSpec r;
        r.id = DatumGetInt64(*spi_datum(i, 1));
        r.model = name;
        r.name = *spi_text(i, 2);
        r.activity_type = *spi_text(i, 3);
        const std::string label = rule_label("activity_rule", r.name, r.id);
        if (auto a = spi_text(i, 4)) r.condition.attribute = *a;
        if (auto o = spi_text(i, 5)) r.condition.op = parse_op(*o);
        r.condition.values = text_array_column(i, 6);
        r.points = parse_rule_points(label, "points", *spi_text(i, 7));
        r.once = bool_column(i, 8, false);
        if (auto mc = spi_datum(i, 9)) r.max_count = DatumGetInt32(*mc);
        r.max_points = numeric_column(i, 10, label, "max_points");
        if (auto e = spi_datum(i, 11)) r.expires_after = to_core_interval(*e);
        if (auto h = spi_datum(i, 12)) r.half_life = to_core_interval(*h);
        r.disqualify = bool_column(i, 13, false);
        r.enabled = bool_column(i, 14, true);
        activity_rules.push_back(std::move(r));
    }

    std::vector<FitRuleSpec> fit_rules;
    spi_exec("SELECT id, name, attribute, op, value, points::text, disqualify, enabled FROM leadscore.fit_rule "
             "WHERE model = $1 ORDER BY id",
             {{TEXTOID, name}}, true);
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        FitRuleSpec r;
        r.id = DatumGetInt64(*spi_datum(i, 1));
        r.model = name;
        r.name = *spi_text(i, 2);
        const std::string label = rule_label("fit_rule", r.name, r.id);
        r.condition.attribute = *spi_text(i, 3);
        r.condition.op = parse_op(*spi_text(i, 4));
        r.condition.values = text_array_column(i, 5);
        r.points = parse_rule_points(label, "points", *spi_text(i, 6));
        r.disqualify = bool_column(i, 7, false);
        r.enabled = bool_column(i, 8, true);
        fit_rules.push_back(std::move(r));
    }

    std::vector<StageSpec> stages;
    spi_exec("SELECT name, min_score::text, min_fit::text, min_engagement::text, sticky FROM leadscore.stage "
             "WHERE model = $1",
             {{TEXTOID, name}}, true);
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        StageSpec s;
        s.name = *spi_text(i, 1);
        const std::string label = "stage \"" + s.name + "\" of model \"" + name + "\"";
        s.min_score = numeric_column(i, 2, label, "min_score");
        s.min_fit = numeric_column(i, 3, label, "min_fit");
        s.min_engagement = numeric_column(i, 4, label, "min_engagement");
        s.sticky = bool_column(i, 5, false);
        stages.push_back(std::move(s));
    }

    cm->tracking = load_tracking(tables_from);
    if (cm->tracking) cm->tracking->model = name;
    cm->model = std::make_unique<Model>(spec, activity_rules, fit_rules, stages);

    for (const auto& r : cm->model->activity_rules())
        if (r.condition.op && op_uses_list(*r.condition.op)) cm->lists_used.push_back(*r.condition.values.at(0));
    for (const auto& r : cm->model->fit_rules())
        if (r.condition.op && op_uses_list(*r.condition.op)) cm->lists_used.push_back(*r.condition.values.at(0));
    cm->has_list_rules = !cm->lists_used.empty();

    if (cm->tracking) {
        const TrackingInfo& t = *cm->tracking;
        cm->activity_matcher = std::make_unique<Matcher>();
        TupleDesc desc = relation_desc_copy(t.activities);
        for (const auto& r : cm->model->activity_rules()) {
            if (r.condition.attribute.empty()) continue;
            CompiledCondition c = compile_condition(rule_label("activity_rule", r.name, r.id), t.activities_name,
                                                    desc, r.condition, *cm->activity_matcher, cm->context);
            c.rule_id = r.id;
            cm->activity_matcher->conditions.emplace(r.id, std::move(c));
        }
        cm->fit_matcher = std::make_unique<Matcher>();
        if (!cm->model->fit_rules().empty() && !OidIsValid(t.leads))
            raise(sqlstate::kObjectNotInPrerequisiteState,
                  "model \"" + name + "\" has fit rules but tracks no leads table",
                  std::string(), "Track the model with the leads and lead_key arguments.");
        if (OidIsValid(t.leads)) {
            TupleDesc ldesc = relation_desc_copy(t.leads);
            for (const auto& r : cm->model->fit_rules()) {
                CompiledCondition c = compile_condition(rule_label("fit_rule", r.name, r.id), t.leads_name, ldesc,
                                                        r.condition, *cm->fit_matcher, cm->context);
                c.rule_id = r.id;
                cm->fit_matcher->conditions.emplace(r.id, std::move(c));
            }
        }
    }
    return cm;
}

}  // namespace

std::shared_ptr<CompiledModel> get_model(const std::string& name, bool require_tracked) {
    free_dropped_plans();
    auto it = g_cache.find(name);
    std::shared_ptr<CompiledModel> cm;
    if (it != g_cache.end()) {
        cm = it->second;
    } else {
        watch_rule_tables();
        SpiConnection spi;
        cm = std::shared_ptr<CompiledModel>(load_model(name, name));
        g_cache[name] = cm;
    }
    if (require_tracked && !cm->tracking)
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore model \"" + name + "\" is not tracked",
              std::string(), "Attach it to the CRM's tables with leadscore.track(...).");
    return cm;
}

std::shared_ptr<CompiledModel> get_model_on_tables(const std::string& name, const std::string& tables_from) {
    if (tables_from == name) return get_model(name, true);
    free_dropped_plans();
    const std::string cache_key = name + "\x1f@" + tables_from;
    auto it = g_cache.find(cache_key);
    if (it != g_cache.end()) return it->second;
    watch_rule_tables();
    SpiConnection spi;
    std::shared_ptr<CompiledModel> cm(load_model(name, tables_from));
    if (!cm->tracking)
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore model \"" + tables_from + "\" is not tracked",
              std::string(), "Name a tracked model whose tables the draft model is scored on.");
    g_cache[cache_key] = cm;
    return cm;
}

std::vector<std::string> tracked_models() {
    SpiConnection spi;
    spi_exec("SELECT model FROM leadscore.tracking ORDER BY model", {}, true);
    std::vector<std::string> out;
    for (std::uint64_t i = 0; i < SPI_processed; i++) out.push_back(*spi_text(i, 1));
    return out;
}

const Matcher& matcher_for_rowtype(CompiledModel& cm, TupleDesc desc, Oid type_id, std::int32_t typmod) {
    const auto cache_key = std::make_pair(type_id, typmod);
    auto it = cm.row_matchers.find(cache_key);
    if (it != cm.row_matchers.end()) return *it->second;
    auto m = std::make_unique<Matcher>();
    SpiConnection spi;
    for (const auto& r : cm.model->activity_rules()) {
        if (r.condition.attribute.empty()) continue;
        CompiledCondition c = compile_condition(rule_label("activity_rule", r.name, r.id), "the aggregated rows",
                                                desc, r.condition, *m, cm.context);
        c.rule_id = r.id;
        m->conditions.emplace(r.id, std::move(c));
    }
    auto& slot = cm.row_matchers[cache_key];
    slot = std::move(m);
    return *slot;
}

RowLayout activity_layout(const CompiledModel& cm, TupleDesc desc, const Matcher& matcher, bool need_lead) {
    const TrackingInfo& t = *cm.tracking;
    RowLayout l;
    auto need = [&](const std::string& col) {
        int a = find_attribute(desc, col);
        if (a == 0)
            raise(sqlstate::kUndefinedColumn,
                  "leadscore model \"" + t.model + "\": column \"" + col + "\" is missing from the activity rows");
        return a;
    };
    l.lead = need_lead ? need(t.lead_column) : 0;
    l.type = need(t.type_column);
    l.time = need(t.time_column);
    l.time_type = TupleDescAttr(desc, l.time - 1)->atttypid;
    l.type_type = TupleDescAttr(desc, l.type - 1)->atttypid;
    if (l.lead) l.key_type = TupleDescAttr(desc, l.lead - 1)->atttypid;
    l.key_text = TextOutput(l.key_type);
    l.type_text = TextOutput(l.type_type);
    if (!is_supported_time_type(l.time_type))
        raise(sqlstate::kDatatypeMismatch, "leadscore model \"" + t.model + "\": time column \"" + t.time_column +
                                               "\" must be timestamptz, timestamp or date");
    for (const auto& c : matcher.columns) l.columns.push_back(need(c.name));
    return l;
}

RowLayout lead_layout(const CompiledModel& cm, TupleDesc desc) {
    const TrackingInfo& t = *cm.tracking;
    RowLayout l;
    l.lead = find_attribute(desc, t.lead_key);
    if (l.lead == 0)
        raise(sqlstate::kUndefinedColumn, "leadscore model \"" + t.model + "\": key column \"" + t.lead_key +
                                              "\" is missing from " + t.leads_name);
    l.key_type = TupleDescAttr(desc, l.lead - 1)->atttypid;
    l.key_text = TextOutput(l.key_type);
    for (const auto& c : cm.fit_matcher->columns) {
        int a = find_attribute(desc, c.name);
        if (a == 0)
            raise(sqlstate::kUndefinedColumn,
                  "leadscore model \"" + t.model + "\": column \"" + c.name + "\" is missing from " + t.leads_name);
        l.columns.push_back(a);
    }
    return l;
}

}  // namespace leadscore::pg
