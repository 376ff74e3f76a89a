// Matching raw rows against a model's rules, and scanning the tracked tables with them.
#include <algorithm>
#include <memory>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "core/decimal.hpp"
#include "core/summary_builder.hpp"
#include "pg/conditions.hpp"
#include "pg/lead_row.hpp"
#include "pg/matching.hpp"
#include "pg/parallel_scan.hpp"
#include "pg/relations.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
}

namespace leadscore::pg {

namespace {

// Up to this many leads are read by key lookups rather than by the lead-row query.
constexpr std::size_t kDirectLeadReads = 64;

std::string column_list(const std::vector<std::string>& names) {
    std::string out;
    std::set<std::string> seen;
    for (const auto& n : names) {
        if (!seen.insert(n).second) continue;
        if (!out.empty()) out += ", ";
        out += quote_ident(n);
    }
    return out;
}

}  // namespace

void move_summaries(SummaryBuilder& builder, std::map<std::string, Summary>& out) {
    for (std::uint32_t i = 0; i < builder.size(); i++) {
        auto [it, added] = out.try_emplace(builder.key(i));
        if (added) {
            it->second = std::move(builder.summary(i));
        } else {
            it->second.merge(builder.summary(i));
        }
    }
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

namespace {

RowLayout lead_layout_for(const CompiledModel& cm, TupleDesc desc, const char* key_column,
                          const std::vector<std::string>& columns, const std::string& where) {
    const TrackingInfo& t = *cm.tracking;
    RowLayout l;
    l.lead = find_attribute(desc, key_column);
    if (l.lead == 0)
        raise(sqlstate::kUndefinedColumn, "leadscore model \"" + t.model + "\": key column \"" + t.lead_key +
                                              "\" is missing from " + t.leads_name);
    l.key_type = TupleDescAttr(desc, l.lead - 1)->atttypid;
    l.key_text = TextOutput(l.key_type);
    for (const std::string& c : columns) {
        int a = find_attribute(desc, c);
        if (a == 0)
            raise(sqlstate::kUndefinedColumn,
                  "leadscore model \"" + t.model + "\": column \"" + c + "\" is missing from " + where);
        l.columns.push_back(a);
    }
    return l;
}

// A multiply_by occurrence's points inside pg_guard: the text of round(points x value, 6),
// computed in numeric (parsed by the caller).
void multiply_value_text(Datum d, Oid type, Datum points, std::string& out) {
    Datum n;
    switch (type) {
        case INT2OID: n = DirectFunctionCall1(int2_numeric, d); break;
        case INT4OID: n = DirectFunctionCall1(int4_numeric, d); break;
        case INT8OID: n = DirectFunctionCall1(int8_numeric, d); break;
        case FLOAT4OID: n = DirectFunctionCall1(float4_numeric, d); break;
        case FLOAT8OID: n = DirectFunctionCall1(float8_numeric, d); break;
        default: n = d; break;
    }
    n = DirectFunctionCall2(numeric_mul, points, n);
    n = DirectFunctionCall2(numeric_round, n, Int32GetDatum(6));
    char* text = DatumGetCString(DirectFunctionCall1(numeric_out, n));
    out = text;
    pfree(text);
}

MicroPoints parse_multiply_value(const std::string& text, const RuleRefs& refs, const std::string& column) {
    std::string reason;
    auto v = parse_points(text, &reason, 9000000000000LL * kPointScale);
    if (!v)
        raise(sqlstate::kNumericValueOutOfRange,
              refs.label + ": column \"multiply_by\": points x \"" + column + "\" = " + text + " " + reason);
    return *v;
}

}  // namespace

RowLayout lead_layout(const CompiledModel& cm, TupleDesc desc) {
    std::vector<std::string> columns;
    for (const auto& c : cm.lead_matcher->columns) columns.push_back(c.name);
    return lead_layout_for(cm, desc, "key", columns, "the lead row of " + cm.tracking->leads_name);
}

RowLayout lead_table_layout(const CompiledModel& cm, TupleDesc desc) {
    return lead_layout_for(cm, desc, cm.tracking->lead_key.c_str(), cm.lead_table_columns, cm.tracking->leads_name);
}

LeadConditions lead_conditions_from(const CompiledModel& cm, const LeadFactsMap& facts) {
    // Asked once per activity row of a scan: a hash lookup, not a walk down the ordered map
    // (whose nodes, and so the keys viewed here, stay put).
    auto index = std::make_shared<std::unordered_map<std::string_view, const std::vector<char>*>>();
    index->reserve(facts.size());
    for (const auto& [key, f] : facts) index->emplace(std::string_view(key), &f.conditions);
    return [&cm, index](const std::string& key) -> const std::vector<char>& {
        auto it = index->find(std::string_view(key));
        return it == index->end() ? cm.absent_lead_conditions : *it->second;
    };
}

bool match_activity_row(const CompiledModel& cm, const Matcher& matcher, const RowLayout& layout,
                        const Datum* values, const bool* nulls, ActivityMatch& out,
                        const LeadConditions* lead_conditions) {
    out.rules.clear();
    out.values.clear();
    if ((layout.lead && nulls[layout.lead - 1]) || nulls[layout.type - 1] || nulls[layout.time - 1]) return false;
    out.time = to_core_time(values[layout.time - 1], layout.time_type);
    const auto& rules = cm.model->activity_rules();
    auto write_texts = [&] {
        if (layout.lead) layout.key_text.write(values[layout.lead - 1], out.key);
        layout.type_text.write(values[layout.type - 1], out.type);
    };
    static thread_local std::vector<std::string> value_texts;
    static thread_local std::vector<const RuleRefs*> valued;
    std::size_t n_valued = 0;
    const std::vector<char>* lead = nullptr;
    // The conditions call PostgreSQL's own operators: one guarded pass, with only trivially
    // destructible locals in it.
    auto match_rules = [&] {
        for (std::size_t idx : cm.model->rules_for_type(out.type)) {
            const ActivityRuleSpec& r = rules[idx];
            const RuleRefs* refs = cm.activity_refs_at[idx];
            if (!refs) {
                out.rules.push_back(r.id);
                out.values.push_back(kNoValue);
                continue;
            }
            auto holds = [&](const ConditionRef& ref) {
                if (ref.lead_side) return (*lead)[static_cast<std::size_t>(ref.index)] != 0;
                const CompiledCondition& c = matcher.conditions[static_cast<std::size_t>(ref.index)];
                const int attno = layout.columns[c.column];
                return Matcher::evaluate(c, values[attno - 1], nulls[attno - 1]);
            };
            if (refs->inline_condition && !holds(*refs->inline_condition)) continue;
            if (!groups_hold(r.conditions, [&](std::size_t i) { return holds(refs->rows[i]); })) continue;
            if (refs->multiply_column >= 0) {
                const int attno = layout.columns[refs->multiply_column];
                // An activity without a value is not an occurrence of a multiply_by rule.
                if (nulls[attno - 1]) continue;
                if (value_texts.size() <= n_valued) value_texts.resize(n_valued + 1);
                if (valued.size() <= n_valued) valued.resize(n_valued + 1);
                multiply_value_text(values[attno - 1], getBaseType(refs->multiply_type), refs->points_numeric,
                                    value_texts[n_valued]);
                valued[n_valued++] = refs;
            }
            out.rules.push_back(r.id);
            out.values.push_back(kNoValue);
        }
    };
    if (!cm.activity_reads_lead) {
        pg_guard([&] {
            write_texts();
            match_rules();
        });
    } else {
        pg_guard(write_texts);
        // Only an activity that a lead-reading rule could match needs its lead's row.
        if (cm.type_reads_lead(out.type)) {
            if (!lead_conditions) raise(sqlstate::kInternalError, "leadscore: activity matched without its lead's row");
            lead = &(*lead_conditions)(out.key);
        }
        pg_guard(match_rules);
    }
    // Values parsed outside the guard, where a bad one may throw.
    if (n_valued > 0) {
        std::size_t k = 0;
        for (std::size_t i = 0; i < out.rules.size() && k < n_valued; i++) {
            auto it = cm.activity_refs.find(out.rules[i]);
            if (it == cm.activity_refs.end() || it->second.multiply_column < 0) continue;
            out.values[i] = parse_multiply_value(value_texts[k], *valued[k], matcher.columns[valued[k]->multiply_column].name);
            k++;
        }
    }
    return true;
}

bool lead_condition_holds(const Matcher& m, int index, const std::vector<int>& columns, const Datum* values,
                          const bool* nulls, std::vector<signed char>& result) {
    signed char& r = result[static_cast<std::size_t>(index)];
    if (r < 0) {
        const CompiledCondition& c = m.conditions[static_cast<std::size_t>(index)];
        const int attno = columns[static_cast<std::size_t>(c.column)];
        r = Matcher::evaluate(c, values[attno - 1], nulls[attno - 1]) ? 1 : 0;
    }
    return r != 0;
}

bool fit_rule_holds(const CompiledModel& cm, const FitRuleSpec& rule, const RuleRefs& refs,
                    const std::vector<int>& columns, const Datum* values, const bool* nulls,
                    std::vector<signed char>& result) {
    auto holds = [&](const ConditionRef& ref) {
        return lead_condition_holds(*cm.lead_matcher, ref.index, columns, values, nulls, result);
    };
    if (refs.inline_condition && !holds(*refs.inline_condition)) return false;
    return groups_hold(rule.conditions, [&](std::size_t i) { return holds(refs.rows[i]); });
}

FitFacts match_lead_row(const CompiledModel& cm, const RowLayout& layout, const Datum* values, const bool* nulls,
                        std::string& key_out, LeadRead what) {
    FitFacts facts;
    const bool fit_only = what == LeadRead::FitOnly;
    const bool conditions_only = what == LeadRead::ActivityConditions;
    const auto& rules = cm.model->fit_rules();
    const Matcher& m = *cm.lead_matcher;
    if (!fit_only) facts.conditions.resize(m.conditions.size());
    key_out.clear();
    static thread_local std::vector<std::string> value_texts;
    static thread_local std::vector<const FitRuleSpec*> matched;
    // Each condition evaluated once, when a rule (or the caller's facts) asks for it (-1: not yet).
    static thread_local std::vector<signed char> result;
    result.assign(m.conditions.size(), -1);
    if (value_texts.size() < rules.size()) value_texts.resize(rules.size());
    if (matched.size() < rules.size()) matched.resize(rules.size());
    std::size_t n = 0;
    pg_guard([&] {
        if (!nulls[layout.lead - 1]) layout.key_text.write(values[layout.lead - 1], key_out);
        if (conditions_only) {
            for (const int i : cm.activity_lead_conditions)
                facts.conditions[static_cast<std::size_t>(i)] =
                    lead_condition_holds(m, i, layout.columns, values, nulls, result) ? 1 : 0;
            return;
        }
        for (const FitRuleSpec& r : rules) {
            const RuleRefs& refs = cm.fit_refs.at(r.id);
            if (!fit_rule_holds(cm, r, refs, layout.columns, values, nulls, result)) continue;
            value_texts[n].clear();
            if (refs.multiply_column >= 0) {
                const int attno = layout.columns[refs.multiply_column];
                // A NULL value gives no points.
                if (nulls[attno - 1]) continue;
                multiply_value_text(values[attno - 1], getBaseType(refs.multiply_type), refs.points_numeric,
                                    value_texts[n]);
            }
            matched[n++] = &r;
        }
        if (fit_only) return;
        for (std::size_t i = 0; i < m.conditions.size(); i++)
            facts.conditions[i] = lead_condition_holds(m, static_cast<int>(i), layout.columns, values, nulls, result) ? 1 : 0;
    });
    if (conditions_only) return facts;
    // (The matches of a fit-only read go to a scratch list, not to the facts.)
    static thread_local std::vector<FitMatch> scratch;
    std::vector<FitMatch>& matches = fit_only ? scratch : facts.matches;
    matches.clear();
    for (std::size_t i = 0; i < n; i++) {
        const RuleRefs& refs = cm.fit_refs.at(matched[i]->id);
        const MicroPoints value =
            refs.multiply_column < 0 ? kNoValue
                                     : parse_multiply_value(value_texts[i], refs, matched[i]->multiply_by);
        matches.push_back(FitMatch{matched[i]->id, value});
    }
    FitResult fr = compute_fit_total(*cm.model, matches);
    facts.fit = fr.fit;
    facts.disqualified = fr.disqualified;
    return facts;
}

namespace {

// Scans the activity table (the given leads, or all; the given types, or all) and adds the
// matched occurrences (of the given rules, or all) to out.
void scan_activities(const CompiledModel& cm, const std::vector<std::string>* keys,
                     const std::vector<std::string>* types, const std::set<std::int64_t>* rules,
                     std::map<std::string, Summary>& out, const LeadFactsMap* facts,
                     std::unordered_set<std::string>* leads_seen = nullptr) {
    const TrackingInfo& t = *cm.tracking;
    if ((keys && keys->empty()) || (types && types->empty())) return;
    LeadFactsMap own_facts;
    // Leads' rows are read only when a scanned type has a rule that reads them.
    const bool reads_lead = cm.activity_reads_lead &&
        (!types || std::any_of(types->begin(), types->end(), [&](const std::string& t) { return cm.type_reads_lead(t); }));
    if (reads_lead && !facts) {
        collect_fits(cm, keys, own_facts, LeadRead::ActivityConditions);
        facts = &own_facts;
    }
    // Every row of every lead: several processes read the table where they may.
    if (!keys && !types && !rules && !leads_seen && collect_activities_in_parallel(cm, facts, out)) return;
    const LeadConditions lead = reads_lead ? lead_conditions_from(cm, *facts) : LeadConditions();
    std::vector<std::string> cols = {t.lead_column, t.type_column, t.time_column};
    for (const auto& c : cm.activity_matcher->columns) cols.push_back(c.name);
    std::string sql = "SELECT " + column_list(cols) + " FROM " + t.activities_name + " WHERE " +
                      quote_ident(t.lead_column) + " IS NOT NULL AND " + quote_ident(t.type_column) +
                      " IS NOT NULL AND " + quote_ident(t.time_column) + " IS NOT NULL";
    std::vector<SqlArg> args;
    if (keys) {
        args.push_back(SqlArg{array_type_of(t.key_type), key_array_literal(*keys)});
        sql += " AND " + quote_ident(t.lead_column) + " = ANY($" + std::to_string(args.size()) + ")";
    }
    if (types) {
        Oid type_type = InvalidOid;
        pg_guard([&] { type_type = get_atttype(t.activities, get_attnum(t.activities, t.type_column.c_str())); });
        args.push_back(SqlArg{TEXTARRAYOID, key_array_literal(*types)});
        sql += " AND " + quote_ident(t.type_column) + " = ANY($" + std::to_string(args.size()) + "::text[]::" +
               type_name(type_type) + "[])";
    }
    std::optional<RowLayout> layout;
    std::vector<Datum> values;
    bool* nulls = nullptr;
    std::vector<char> null_buf;
    ActivityMatch match;
    // The rows come in no lead order: gathered per lead, then added to the summaries in batches.
    SummaryBuilder builder;
    std::uint32_t last = 0;
    bool have_last = false;
    std::string last_key, last_seen;
    spi_scan(sql, args, [&](HeapTuple tuple, TupleDesc desc) {
        if (!layout) {
            layout = activity_layout(cm, desc, *cm.activity_matcher);
            values.resize(desc->natts);
            null_buf.resize(desc->natts);
            nulls = reinterpret_cast<bool*>(null_buf.data());
        }
        pg_guard([&] { heap_deform_tuple(tuple, desc, values.data(), nulls); });
        if (!match_activity_row(cm, *cm.activity_matcher, *layout, values.data(), nulls, match, &lead)) return;
        if (leads_seen && (leads_seen->empty() || match.key != last_seen)) {
            leads_seen->insert(match.key);
            last_seen = match.key;
        }
        // A lead gets a summary only from a row that counts for one of the rules.
        if (std::none_of(match.rules.begin(), match.rules.end(),
                         [&](std::int64_t id) { return !rules || rules->count(id) > 0; }))
            return;
        if (!have_last || match.key != last_key) {
            last = builder.lead(match.key);
            last_key = match.key;
            have_last = true;
        }
        for (std::size_t i = 0; i < match.rules.size(); i++)
            if (!rules || rules->count(match.rules[i])) builder.add(last, match.rules[i], match.time, match.values[i]);
    });
    builder.flush();
    move_summaries(builder, out);
}

}  // namespace

void collect_activities(const CompiledModel& cm, const std::vector<std::string>* keys,
                        std::map<std::string, Summary>& out, const LeadFactsMap* facts) {
    scan_activities(cm, keys, nullptr, nullptr, out, facts);
}

std::set<std::string> rule_types(const Model& model, const std::set<std::int64_t>& rules) {
    std::set<std::string> types;
    for (std::int64_t id : rules)
        if (const ActivityRuleSpec* r = model.activity_rule(id)) types.insert(r->activity_type);
    return types;
}

void collect_rule_occurrences(const CompiledModel& cm, const std::set<std::int64_t>& rules,
                              std::map<std::string, Summary>& out, std::unordered_set<std::string>* leads_seen,
                              const std::vector<std::string>* keys) {
    const std::set<std::string> types = rule_types(*cm.model, rules);
    const std::vector<std::string> type_list(types.begin(), types.end());
    scan_activities(cm, keys, &type_list, &rules, out, nullptr, leads_seen);
}

void collect_fits(const CompiledModel& cm, const std::vector<std::string>* keys,
                  std::map<std::string, FitFacts>& out, LeadRead what) {
    collect_fits(cm, keys, [&](std::string& key, FitFacts& f) { out[key] = std::move(f); }, what);
}

void collect_fits(const CompiledModel& cm, const std::vector<std::string>* keys, const FitSink& on_lead,
                  LeadRead what) {
    const TrackingInfo& t = *cm.tracking;
    if (!OidIsValid(t.leads)) return;
    if (keys && keys->empty()) return;
    // A statement's few leads: index probes cost less than starting the query's executor.
    if (keys && keys->size() <= kDirectLeadReads && collect_fits_directly(cm, *keys, on_lead, what)) return;
    std::string sql = lead_row_query(cm) + " WHERE l." + quote_ident(t.lead_key) + " IS NOT NULL";
    std::optional<RowLayout> layout;
    std::vector<Datum> values;
    std::vector<char> null_buf;
    std::string key;
    auto on_row = [&](HeapTuple tuple, TupleDesc desc) {
        if (!layout) {
            layout = lead_layout(cm, desc);
            values.resize(desc->natts);
            null_buf.resize(desc->natts);
        }
        bool* nulls = reinterpret_cast<bool*>(null_buf.data());
        pg_guard([&] { heap_deform_tuple(tuple, desc, values.data(), nulls); });
        FitFacts f = match_lead_row(cm, *layout, values.data(), nulls, key, what);
        if (!key.empty() || !nulls[layout->lead - 1]) on_lead(key, f);
    };
    // A statement's few leads (an activity insert that reads its lead, a lead update): a kept
    // generic plan, so a single-row insert does not plan the join to the related tables again.
    if (keys && keys->size() <= 10000) {
        sql += " AND l." + quote_ident(t.lead_key) + " = ANY($1::text[]::" + t.key_type_name + "[])";
        // The model's kept plans are a cache: filling it does not change the model.
        SPIPlanPtr plan = cached_plan(const_cast<CompiledModel&>(cm), sql, {TEXTARRAYOID});
        std::vector<Datum> args(1);
        std::vector<char> arg_nulls(1, ' ');
        pg_guard([&] { args[0] = text_array_datum(*keys); });
        const std::uint64_t n = spi_exec_plan(plan, args, arg_nulls);
        SPITupleTable* table = SPI_tuptable;
        for (std::uint64_t i = 0; i < n; i++) on_row(table->vals[i], table->tupdesc);
        pg_guard([&] { SPI_freetuptable(table); });
        return;
    }
    std::vector<SqlArg> args;
    if (keys) {
        sql += " AND l." + quote_ident(t.lead_key) + " = ANY($1)";
        args.push_back(SqlArg{array_type_of(t.key_type), key_array_literal(*keys)});
    }
    spi_scan(sql, args, on_row);
}

}  // namespace leadscore::pg
