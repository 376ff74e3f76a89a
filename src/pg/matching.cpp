// Matching raw rows against a model's rules, and scanning the tracked tables with them.
#include <set>

#include "pg/matching.hpp"
#include "pg/relations.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
}

namespace leadscore::pg {

namespace {

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

bool match_activity_row(const CompiledModel& cm, const Matcher& matcher, const RowLayout& layout,
                        const Datum* values, const bool* nulls, ActivityMatch& out) {
    out.rules.clear();
    if ((layout.lead && nulls[layout.lead - 1]) || nulls[layout.type - 1] || nulls[layout.time - 1]) return false;
    out.time = to_core_time(values[layout.time - 1], layout.time_type);
    const auto& rules = cm.model->activity_rules();
    std::vector<std::int64_t>& hits = out.rules;
    // One guarded pass per row: the text forms, then the conditions, which call
    // PostgreSQL's own operators. Only trivially destructible locals live in here.
    pg_guard([&] {
        if (layout.lead) layout.key_text.write(values[layout.lead - 1], out.key);
        layout.type_text.write(values[layout.type - 1], out.type);
        const std::vector<std::size_t>& candidates = cm.model->rules_for_type(out.type);
        for (std::size_t idx : candidates) {
            const ActivityRuleSpec& r = rules[idx];
            if (r.condition.attribute.empty()) {
                hits.push_back(r.id);
                continue;
            }
            const CompiledCondition& c = matcher.conditions.at(r.id);
            const int attno = layout.columns[c.column];
            if (Matcher::evaluate(c, values[attno - 1], nulls[attno - 1])) hits.push_back(r.id);
        }
    });
    return true;
}

FitFacts match_lead_row(const CompiledModel& cm, const RowLayout& layout, const Datum* values, const bool* nulls,
                        std::string& key_out) {
    FitFacts facts;
    const auto& rules = cm.model->fit_rules();
    facts.matches.reserve(rules.size());
    std::vector<std::int64_t>& hits = facts.matches;
    key_out.clear();
    pg_guard([&] {
        if (!nulls[layout.lead - 1]) layout.key_text.write(values[layout.lead - 1], key_out);
        for (const FitRuleSpec& r : rules) {
            const CompiledCondition& c = cm.fit_matcher->conditions.at(r.id);
            const int attno = layout.columns[c.column];
            if (Matcher::evaluate(c, values[attno - 1], nulls[attno - 1])) hits.push_back(r.id);
        }
    });
    FitResult fr = compute_fit(*cm.model, facts.matches);
    facts.fit = fr.fit;
    facts.disqualified = fr.disqualified;
    return facts;
}

void collect_activities(const CompiledModel& cm, const std::vector<std::string>* keys,
                        std::map<std::string, Summary>& out) {
    const TrackingInfo& t = *cm.tracking;
    if (keys && keys->empty()) return;
    std::vector<std::string> cols = {t.lead_column, t.type_column, t.time_column};
    for (const auto& c : cm.activity_matcher->columns) cols.push_back(c.name);
    std::string sql = "SELECT " + column_list(cols) + " FROM " + t.activities_name + " WHERE " +
                      quote_ident(t.lead_column) + " IS NOT NULL AND " + quote_ident(t.type_column) +
                      " IS NOT NULL AND " + quote_ident(t.time_column) + " IS NOT NULL";
    std::vector<SqlArg> args;
    if (keys) {
        sql += " AND " + quote_ident(t.lead_column) + " = ANY($1)";
        args.push_back(SqlArg{array_type_of(t.key_type), key_array_literal(*keys)});
    }
    std::optional<RowLayout> layout;
    std::vector<Datum> values;
    std::vector<bool> unused;
    bool* nulls = nullptr;
    std::vector<char> null_buf;
    ActivityMatch match;
    spi_scan(sql, args, [&](HeapTuple tuple, TupleDesc desc) {
        if (!layout) {
            layout = activity_layout(cm, desc, *cm.activity_matcher);
            values.resize(desc->natts);
            null_buf.resize(desc->natts);
            nulls = reinterpret_cast<bool*>(null_buf.data());
        }
        pg_guard([&] { heap_deform_tuple(tuple, desc, values.data(), nulls); });
        if (!match_activity_row(cm, *cm.activity_matcher, *layout, values.data(), nulls, match)) return;
        if (match.rules.empty()) return;
        Summary& s = out[match.key];
        for (std::int64_t id : match.rules) s.add(id, match.time);
    });
}

void collect_fits(const CompiledModel& cm, const std::vector<std::string>* keys,
                  std::map<std::string, FitFacts>& out) {
    const TrackingInfo& t = *cm.tracking;
    if (!OidIsValid(t.leads)) return;
    if (keys && keys->empty()) return;
    std::vector<std::string> cols = {t.lead_key};
    for (const auto& c : cm.fit_matcher->columns) cols.push_back(c.name);
    std::string sql = "SELECT " + column_list(cols) + " FROM " + t.leads_name + " WHERE " + quote_ident(t.lead_key) +
                      " IS NOT NULL";
    std::vector<SqlArg> args;
    if (keys) {
        sql += " AND " + quote_ident(t.lead_key) + " = ANY($1)";
        args.push_back(SqlArg{array_type_of(t.key_type), key_array_literal(*keys)});
    }
    std::optional<RowLayout> layout;
    std::vector<Datum> values;
    std::vector<char> null_buf;
    std::string key;
    spi_scan(sql, args, [&](HeapTuple tuple, TupleDesc desc) {
        if (!layout) {
            layout = lead_layout(cm, desc);
            values.resize(desc->natts);
            null_buf.resize(desc->natts);
        }
        bool* nulls = reinterpret_cast<bool*>(null_buf.data());
        pg_guard([&] { heap_deform_tuple(tuple, desc, values.data(), nulls); });
        FitFacts f = match_lead_row(cm, *layout, values.data(), nulls, key);
        if (!key.empty() || !nulls[layout->lead - 1]) out[key] = std::move(f);
    });
}

}  // namespace leadscore::pg
