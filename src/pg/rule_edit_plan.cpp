// Classifying a rule edit: which stored state an INSERT, UPDATE or DELETE of a rule table
// invalidates, from its transition tables' old and new rule rows (rule_edits.hpp). A change
// of points, of a cap or an expiry that only tightens, of stages or of the model's range
// needs a recompute from stored summaries; a fit change reads the leads (and related) tables;
// a change of what an activity rule matches collects that rule's occurrences again from the
// rows of its activity type only.
#include "core/decimal.hpp"
#include "pg/args.hpp"
#include "pg/datum.hpp"
#include "pg/rule_edits.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/fmgrprotos.h"
#include "utils/rel.h"
}

namespace leadscore::pg {

namespace {

using Row = std::map<std::string, std::optional<std::string>>;

// Every row of a transition table, each column in its text form.
std::vector<Row> read_rows(Tuplestorestate* store, TupleDesc desc) {
    std::vector<Row> rows;
    if (!store) return rows;
    scan_transition(store, desc, [&](Datum* values, bool* nulls) {
        Row row;
        for (int i = 0; i < desc->natts; i++) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            if (att->attisdropped) continue;
            std::optional<std::string> v;
            if (!nulls[i]) {
                char* s = nullptr;
                pg_guard([&] { s = key_to_cstring(values[i], att->atttypid); });
                v = s;
                pg_guard([&] { pfree(s); });
            }
            row.emplace(NameStr(att->attname), std::move(v));
        }
        rows.push_back(std::move(row));
    });
    return rows;
}

std::optional<std::string> field(const Row& r, const char* column) {
    auto it = r.find(column);
    return it == r.end() ? std::nullopt : it->second;
}

bool same(const Row& a, const Row& b, const char* column) { return field(a, column) == field(b, column); }

// The old rows by their id, to pair with the new ones.
std::map<std::string, const Row*> rows_by_id(const std::vector<Row>& rows) {
    std::map<std::string, const Row*> by_id;
    for (const Row& r : rows) by_id[*field(r, "id")] = &r;
    return by_id;
}

// An interval text as PostgreSQL prints it, to its parts; nullopt when NULL.
std::optional<Interval> interval_of(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    Interval iv;
    pg_guard([&] {
        Datum d = DirectFunctionCall3(interval_in, CStringGetDatum(text->c_str()), ObjectIdGetDatum(InvalidOid),
                                      Int32GetDatum(-1));
        iv = to_core_interval(d);
    });
    return iv;
}

// Whether a new limit keeps at most what the old one kept: pruning by the old limit dropped
// nothing the new one needs (NULL is no limit).
bool interval_tightens(const std::optional<std::string>& before, const std::optional<std::string>& after) {
    if (before == after) return true;
    const auto b = interval_of(before), a = interval_of(after);
    if (!a) return false;
    if (!b) return true;
    return a->months <= b->months && a->days <= b->days && a->micros <= b->micros;
}

std::optional<long long> number_of(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    return std::stoll(*text);
}

// An occurrence cap (once, max_count) that keeps at most what the old one kept.
bool cap_tightens(const Row& before, const Row& after) {
    auto cap = [](const Row& r) -> std::optional<long long> {
        std::optional<long long> c = number_of(field(r, "max_count"));
        if (field(r, "once") == std::optional<std::string>("t") && (!c || *c > 1)) c = 1;
        return c;
    };
    const auto b = cap(before), a = cap(after);
    if (!a) return !b;
    return !b || *a <= *b;
}

// What an UPDATE of one activity rule needs: its occurrences collected again, or only a
// recompute from stored summaries.
void plan_activity_rule_update(const Row& before, const Row& after, EditPlan& plan) {
    const std::int64_t id = std::stoll(*field(after, "id"));
    const bool enabled_before = field(before, "enabled") == std::optional<std::string>("t");
    const bool enabled_after = field(after, "enabled") == std::optional<std::string>("t");
    // Only leads with rows of the rule's type (before or after) can have its occurrences.
    plan.types.insert(*field(before, "activity_type"));
    plan.types.insert(*field(after, "activity_type"));
    // (Enabled or not, its stored occurrences are kept right: enabling it counts them again.)
    if (!enabled_before && enabled_after) plan.enabled.insert(id);
    const bool pattern = field(after, "min_count") || field(after, "cooldown") || field(before, "min_count") ||
                         field(before, "cooldown");
    const char* matching[] = {"activity_type", "attribute", "op", "value", "multiply_by", "min_count", "within",
                              "cooldown"};
    bool rematch = false;
    // A multiply_by rule's occurrences carry their points (points x value): new points, new values.
    if ((field(before, "multiply_by") || field(after, "multiply_by")) && !same(before, after, "points")) rematch = true;
    for (const char* c : matching) rematch = rematch || !same(before, after, c);
    // A quiet rule keeps only its latest occurrences; other rules more: adding or removing
    // quiet_for changes what the summary must hold.
    rematch = rematch || field(before, "quiet_for").has_value() != field(after, "quiet_for").has_value();
    // Pruning dropped what the old caps and expiry could never count again; a pattern rule's
    // settled counting depends on all of them.
    if (pattern) {
        const char* settled_by[] = {"once", "max_count", "expires_after", "half_life"};
        for (const char* c : settled_by) rematch = rematch || !same(before, after, c);
    } else {
        rematch = rematch || !cap_tightens(before, after) ||
                  !interval_tightens(field(before, "expires_after"), field(after, "expires_after"));
        // Without expiry and decay, past occurrences may be kept as a count (only_counts):
        // expiry or decay added needs their times again.
        if ((!field(before, "expires_after") && field(after, "expires_after")) ||
            (!field(before, "half_life") && field(after, "half_life")))
            rematch = true;
    }
    if (rematch) plan.rematch.insert(id);
}

// A fit-rule UPDATE that changes only points (rules enabled before and after, no multiply_by):
// per model, each rule's change of points; fit_points_only stays false for a model any other
// change touches.
void plan_fit_points(const std::vector<Row>& old_rows, const std::vector<Row>& new_rows,
                     std::map<std::string, EditPlan>& plans) {
    const std::map<std::string, const Row*> before = rows_by_id(old_rows);
    std::map<std::string, bool> points_only;
    for (const Row& r : old_rows) points_only[*field(r, "model")] = old_rows.size() == new_rows.size();
    for (const Row& r : new_rows) points_only[*field(r, "model")] = old_rows.size() == new_rows.size();
    for (const Row& after : new_rows) {
        const std::string model = *field(after, "model");
        auto it = before.find(*field(after, "id"));
        bool only = it != before.end() && !field(after, "multiply_by");
        if (only)
            for (const auto& [column, value] : after)
                if (column != "points" && column != "name" && value != field(*it->second, column.c_str())) only = false;
        const bool enabled = field(after, "enabled") == std::optional<std::string>("t");
        std::optional<MicroPoints> was, now;
        if (only && enabled) {
            std::string reason;
            was = parse_points(field(*it->second, "points").value_or(""), &reason);
            now = parse_points(field(after, "points").value_or(""), &reason);
            only = was && now;
        }
        if (!only) {
            points_only[model] = false;
            if (it != before.end()) points_only[*field(*it->second, "model")] = false;
            continue;
        }
        // (A disabled rule adds nothing, before or after.)
        if (enabled && *now != *was) plans[model].fit_point_deltas[std::stoll(*field(after, "id"))] = *now - *was;
    }
    for (const auto& [model, only] : points_only) plans[model].fit_points_only = only;
}

}  // namespace

std::map<std::string, EditPlan> plan_rule_edit(const std::string& table, TriggerData* trig) {
    std::map<std::string, EditPlan> plans;
    TupleDesc desc = RelationGetDescr(trig->tg_relation);
    if (TRIGGER_FIRED_BY_TRUNCATE(trig->tg_event) || table == "list_entry") return plans;
    const std::vector<Row> old_rows = read_rows(trig->tg_oldtable, desc);
    const std::vector<Row> new_rows = read_rows(trig->tg_newtable, desc);
    // The plan of every model named in the old or new rows' column.
    auto each_model = [&](const char* column, auto&& mark) {
        for (const auto* rows : {&old_rows, &new_rows})
            for (const Row& r : *rows)
                if (auto m = field(r, column)) mark(plans[*m]);
        return plans;
    };
    if (table == "stage") return each_model("model", [](EditPlan& p) { p.recompute = true; });
    if (table == "model") return each_model("name", [](EditPlan& p) { p.recompute = true; });
    if (table == "fit_rule") {
        each_model("model", [](EditPlan& p) { p.refit = true; });
        plan_fit_points(old_rows, new_rows, plans);
        return plans;
    }
    if (table == "relation") return each_model("model", [](EditPlan& p) { p.full = true; });
    if (table == "fit_condition" || table == "activity_condition") {
        std::vector<std::optional<std::string>> ids;
        for (const auto* rows : {&old_rows, &new_rows})
            for (const Row& r : *rows) ids.push_back(field(r, "rule_id"));
        const bool fit = table == "fit_condition";
        const std::uint64_t n =
            spi_exec(std::string("SELECT model, id, ") + (fit ? "NULL::text" : "activity_type") + " FROM leadscore." +
                         (fit ? "fit_rule" : "activity_rule") + " WHERE id = ANY($1::bigint[])" + (fit ? " AND enabled" : ""),
                     {{TEXTOID, text_array_literal(ids)}}, true);
        // Per rule: the groups of its changed condition rows, when every one of them (before and
        // after) tests the lead or a related row ("lead.x", "relation.x").
        std::map<std::int64_t, std::set<std::int64_t>> lead_side_groups;
        std::set<std::int64_t> activity_side;
        for (const auto* rows : {&old_rows, &new_rows})
            for (const Row& r : *rows) {
                const std::int64_t id = std::stoll(*field(r, "rule_id"));
                const std::optional<std::string> attribute = field(r, "attribute");
                if (!attribute || attribute->find('.') == std::string::npos) activity_side.insert(id);
                lead_side_groups[id].insert(std::stoll(field(r, "grp").value_or("1")));
            }
        for (std::uint64_t i = 0; i < n; i++) {
            EditPlan& p = plans[*spi_text(i, 1)];
            p.summaries_only = !fit;
            if (fit) {
                p.refit = true;
            } else {
                const std::int64_t id = std::stoll(*spi_text(i, 2));
                p.rematch.insert(id);
                p.types.insert(*spi_text(i, 3));
                if (!activity_side.count(id)) p.lead_side_groups[id] = lead_side_groups[id];
            }
        }
        return plans;
    }
    // activity_rule: pair old and new rows by id.
    std::map<std::string, const Row*> before = rows_by_id(old_rows);
    // New rules alone change only the summaries of the leads with rows they match.
    if (old_rows.empty())
        for (const Row& r : new_rows) plans[*field(r, "model")].summaries_only = true;
    for (const Row& r : new_rows) {
        const std::string model = *field(r, "model");
        auto it = before.find(*field(r, "id"));
        if (it == before.end() || !same(*it->second, r, "model")) {
            // A new rule (or one moved from another model): its occurrences, from its rows (a
            // disabled one's too, kept for when it is enabled).
            plans[model].rematch.insert(std::stoll(*field(r, "id")));
            plans[model].types.insert(*field(r, "activity_type"));
            if (it != before.end()) plans[*field(*it->second, "model")].types.insert(*field(*it->second, "activity_type"));
        } else {
            plan_activity_rule_update(*it->second, r, plans[model]);
        }
        if (it != before.end()) before.erase(it);
    }
    // Deleted rules: their stored occurrences are no longer counted.
    for (const auto& [id, r] : before) plans[*field(*r, "model")].types.insert(*field(*r, "activity_type"));
    return plans;
}

}  // namespace leadscore::pg
