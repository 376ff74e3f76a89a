// The lead row: a lead's own columns and the columns of its related rows ("relation.column"),
// as lead-side conditions and fit rules read them.
#include <algorithm>

#include "pg/lead_row.hpp"
#include "pg/matching.hpp"
#include "pg/relations.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/lsyscache.h"
}

namespace leadscore::pg {

const RelationInfo* find_relation(const std::vector<RelationInfo>& relations, const std::string& name) {
    for (const RelationInfo& r : relations)
        if (r.name == name) return &r;
    return nullptr;
}

namespace {

// The type of a lead-row column: a leads-table column, or relation.column of a related table.
void resolve_lead_column(const TrackingInfo& t, const std::vector<RelationInfo>& relations, const std::string& column,
                         const std::string& label, const std::string& attribute, Oid& type, std::int32_t& typmod,
                         Oid& collation) {
    if (!OidIsValid(t.leads))
        raise(sqlstate::kObjectNotInPrerequisiteState,
              label + ": attribute \"" + attribute + "\" reads the lead, but model \"" + t.model +
                  "\" tracks no leads table",
              std::string(), "Track the model with the leads and lead_key arguments.");
    Oid rel = t.leads;
    std::string col = column, where = t.leads_name;
    const auto dot = column.find('.');
    if (dot != std::string::npos) {
        const RelationInfo* r = find_relation(relations, column.substr(0, dot));
        if (!r)
            raise(sqlstate::kUndefinedObject, label + ": attribute \"" + attribute + "\" names unknown relation \"" +
                                                  column.substr(0, dot) + "\"");
        rel = r->target;
        col = column.substr(dot + 1);
        where = r->target_name + " (relation \"" + r->name + "\")";
    }
    bool found = false;
    pg_guard([&] {
        const AttrNumber att = get_attnum(rel, col.c_str());
        if (att == InvalidAttrNumber) return;
        found = true;
        get_atttypetypmodcoll(rel, att, &type, &typmod, &collation);
    });
    if (!found)
        raise(sqlstate::kUndefinedColumn, label + ": column \"" + attribute + "\" does not exist in table " + where,
              std::string(),
              dot == std::string::npos ? "The attribute must name a column of the tracked table."
                                       : "relation.column must name a column of the relation's target table.");
}

}  // namespace

TupleDesc lead_row_desc(const TrackingInfo& tracking, const std::vector<RelationInfo>& relations,
                        const std::vector<ConditionSource>& sources,
                        const std::vector<std::pair<std::string, std::string>>& extra_columns) {
    struct Column {
        std::string name;
        Oid type;
        std::int32_t typmod;
        Oid collation;
    };
    std::vector<Column> columns;
    auto want = [&](const std::string& column, const std::string& label, const std::string& attribute) {
        for (const Column& c : columns)
            if (c.name == column) return;
        Column c{column, InvalidOid, -1, InvalidOid};
        resolve_lead_column(tracking, relations, column, label, attribute, c.type, c.typmod, c.collation);
        columns.push_back(std::move(c));
    };
    for (const ConditionSource& s : sources) want(s.column, s.label, s.spec->attribute);
    for (const auto& [column, label] : extra_columns) want(column, label, column);
    TupleDesc desc = nullptr;
    pg_guard([&] {
        desc = CreateTemplateTupleDesc(static_cast<int>(std::max<std::size_t>(columns.size(), 1)));
        for (std::size_t i = 0; i < columns.size(); i++) {
            TupleDescInitEntry(desc, static_cast<AttrNumber>(i + 1), columns[i].name.c_str(), columns[i].type,
                               columns[i].typmod, 0);
            TupleDescInitEntryCollation(desc, static_cast<AttrNumber>(i + 1), columns[i].collation);
        }
        if (columns.empty()) TupleDescInitEntry(desc, 1, "?column?", INT4OID, -1, 0);
    });
    return desc;
}

std::string lead_row_query(const CompiledModel& cm, const std::vector<bool>* columns) {
    const TrackingInfo& t = *cm.tracking;
    std::string select = "SELECT l." + quote_ident(t.lead_key) + " AS key";
    std::string from = " FROM " + t.leads_name + " l";
    std::vector<std::string> joined;
    for (std::size_t i = 0; i < cm.lead_matcher->columns.size(); i++) {
        const ColumnBinding& c = cm.lead_matcher->columns[i];
        if (columns && !(*columns)[i]) continue;
        const auto dot = c.name.find('.');
        if (dot == std::string::npos) {
            select += ", l." + quote_ident(c.name) + " AS " + quote_ident(c.name);
            continue;
        }
        const std::string rel = c.name.substr(0, dot);
        std::size_t idx = 0;
        while (idx < cm.relations.size() && cm.relations[idx].name != rel) idx++;
        const RelationInfo& r = cm.relations.at(idx);
        const std::string alias = "r" + std::to_string(idx);
        if (std::find(joined.begin(), joined.end(), rel) == joined.end()) {
            joined.push_back(rel);
            from += " LEFT JOIN " + r.target_name + " " + alias + " ON " + alias + "." + quote_ident(r.target_key) +
                    " = l." + quote_ident(r.lead_column);
        }
        select += ", " + alias + "." + quote_ident(c.name.substr(dot + 1)) + " AS " + quote_ident(c.name);
    }
    return select + from;
}

void collect_fit_rule_matches(const CompiledModel& cm, const std::vector<std::int64_t>& rules,
                              const FitRuleMatchSink& on_lead) {
    const TrackingInfo& t = *cm.tracking;
    const Matcher& m = *cm.lead_matcher;
    if (!OidIsValid(t.leads) || rules.empty()) return;
    if (rules.size() > 64) raise(sqlstate::kInternalError, "leadscore: more than 64 fit rules matched at once");
    std::vector<const FitRuleSpec*> specs;
    std::vector<const RuleRefs*> refs;
    std::vector<bool> columns(m.columns.size(), false);
    auto want = [&](const ConditionRef& ref) { columns[static_cast<std::size_t>(m.conditions[static_cast<std::size_t>(ref.index)].column)] = true; };
    for (std::int64_t id : rules) {
        const FitRuleSpec* spec = cm.model->fit_rule(id);
        auto it = cm.fit_refs.find(id);
        if (!spec || it == cm.fit_refs.end() || it->second.multiply_column >= 0)
            raise(sqlstate::kInternalError, "leadscore: fit rule " + std::to_string(id) + " cannot be matched alone");
        specs.push_back(spec);
        refs.push_back(&it->second);
        if (it->second.inline_condition) want(*it->second.inline_condition);
        for (const ConditionRef& ref : it->second.rows) want(ref);
    }
    // Where each matcher column is in the query's rows (0: not read).
    std::vector<int> attno(m.columns.size(), 0);
    std::vector<Datum> values;
    std::vector<char> null_buf;
    TextOutput key_text;
    std::string key;
    // Conditions evaluated once per lead, when a rule asks (-1: not yet).
    std::vector<signed char> result(m.conditions.size(), -1);
    std::uint64_t passed = 0;
    const std::string sql = lead_row_query(cm, &columns) + " WHERE l." + quote_ident(t.lead_key) + " IS NOT NULL";
    spi_scan(sql, {}, [&](HeapTuple tuple, TupleDesc desc) {
        if (values.empty()) {
            for (std::size_t i = 0; i < m.columns.size(); i++)
                if (columns[i] && (attno[i] = find_attribute(desc, m.columns[i].name)) == 0)
                    raise(sqlstate::kInternalError, "leadscore: column \"" + m.columns[i].name + "\" missing from the lead row");
            values.resize(static_cast<std::size_t>(desc->natts));
            null_buf.resize(static_cast<std::size_t>(desc->natts));
            key_text = TextOutput(TupleDescAttr(desc, 0)->atttypid);
        }
        bool* nulls = reinterpret_cast<bool*>(null_buf.data());
        std::fill(result.begin(), result.end(), -1);
        passed = 0;
        pg_guard([&] {
            heap_deform_tuple(tuple, desc, values.data(), nulls);
            if (nulls[0]) return;
            key_text.write(values[0], key);
            for (std::size_t i = 0; i < specs.size(); i++)
                if (fit_rule_holds(cm, *specs[i], *refs[i], attno, values.data(), nulls, result))
                    passed |= std::uint64_t{1} << i;
        });
        if (passed) on_lead(key, passed);
    });
}

}  // namespace leadscore::pg
