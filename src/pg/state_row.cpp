// The stored per-lead state row: its column description and Datum conversions.
#include "pg/datum.hpp"
#include "pg/state_row.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
}

namespace leadscore::pg {

namespace {

// In StateColumn order; leadscore.lead_state in the install script has these columns.
const StateColumnDef kColumns[kStateColumnCount] = {
    {"lead", InvalidOid, InvalidOid},
    {"model", TEXTOID, TEXTARRAYOID},
    {"lead_id", TEXTOID, TEXTARRAYOID},
    {"score", NUMERICOID, NUMERICARRAYOID},
    {"fit_score", NUMERICOID, NUMERICARRAYOID},
    {"engagement_score", NUMERICOID, NUMERICARRAYOID},
    {"stage", TEXTOID, TEXTARRAYOID},
    {"disqualified", BOOLOID, BOOLARRAYOID},
    {"fit_disqualified", BOOLOID, BOOLARRAYOID},
    {"stage_since", TIMESTAMPTZOID, TIMESTAMPTZARRAYOID},
    {"scored_at", TIMESTAMPTZOID, TIMESTAMPTZARRAYOID},
    {"next_change", TIMESTAMPTZOID, TIMESTAMPTZARRAYOID},
    {"summary", BYTEAOID, BYTEAARRAYOID},
};

const char* numeric_text(Datum d) { return DatumGetCString(DirectFunctionCall1(numeric_out, d)); }

std::optional<Timestamp> time_or_null(const StateDatums& row, int column) {
    if (row.nulls[column]) return std::nullopt;
    return static_cast<Timestamp>(DatumGetTimestampTz(row.values[column]));
}

// Zero bytes put before a summary so that, stored, it ends on an 8-byte boundary. The summary
// starts on one (after a timestamp) and the key column after it may need one: without this,
// the alignment padding between them changes with the summary's length, and an update's WAL
// record (which leaves out the bytes the old and new row share at their end) carries the
// whole row instead of only what changed.
std::size_t summary_padding(std::size_t len) {
    for (std::size_t pad = 0;; pad++) {
        const std::size_t data = pad + len;
        // A value whose data and 1-byte header fit in 127 bytes is stored with that header.
        const std::size_t header = data + VARHDRSZ_SHORT <= VARATT_SHORT_MAX ? VARHDRSZ_SHORT : VARHDRSZ;
        if ((header + data) % 8 == 0) return pad;
    }
}

void set(StateDatums& out, int column, Datum value, bool isnull = false) {
    out.values[column] = isnull ? (Datum)0 : value;
    out.nulls[column] = isnull;
}

}  // namespace

const StateColumnDef& state_column(int column) { return kColumns[column]; }

std::string state_column_names(int first, const char* prefix) {
    std::string out;
    for (int c = first; c < kStateColumnCount; c++) {
        if (c > first) out += ", ";
        out += prefix;
        out += kColumns[c].name;
    }
    return out;
}

void read_state_fields(const StateDatums& row, StateFieldsNeeded needed, StateFields& out) {
    out = StateFields();
    if (!row.nulls[kStateSummary]) {
        bytea* b = DatumGetByteaPP(row.values[kStateSummary]);
        out.summary = reinterpret_cast<const unsigned char*>(VARDATA_ANY(b));
        out.summary_len = VARSIZE_ANY_EXHDR(b);
    }
    if (!row.nulls[kStateFitScore]) out.fit = numeric_text(row.values[kStateFitScore]);
    if (!row.nulls[kStateStage]) out.stage = TextDatumGetCString(row.values[kStateStage]);
    if (needed == StateFieldsNeeded::ForDeltas) return;
    if (!row.nulls[kStateLeadId]) out.key = TextDatumGetCString(row.values[kStateLeadId]);
    if (!row.nulls[kStateScore]) out.score = numeric_text(row.values[kStateScore]);
    if (!row.nulls[kStateEngagementScore]) out.engagement = numeric_text(row.values[kStateEngagementScore]);
}

void parse_state_fields(const StateDatums& row, const StateFields& fields, StateFieldsNeeded needed,
                        StoredState& out) {
    out = StoredState();
    if (fields.key) out.key = fields.key;
    if (row.nulls[kStateSummary]) {
        out.initialized = false;
    } else {
        out.initialized = true;
        out.summary = Summary::deserialize(fields.summary, fields.summary_len);
    }
    auto flag = [&](int column) { return !row.nulls[column] && DatumGetBool(row.values[column]); };
    if (fields.fit) out.fit = parse_stored_points(fields.fit);
    out.fit_disqualified = flag(kStateFitDisqualified);
    if (fields.stage) out.stage = std::string(fields.stage);
    out.stage_since = time_or_null(row, kStateStageSince);
    if (needed == StateFieldsNeeded::ForDeltas) return;
    if (fields.score) out.score = parse_stored_points(fields.score);
    if (fields.engagement) out.engagement = parse_stored_points(fields.engagement);
    out.disqualified = flag(kStateDisqualified);
    out.next_change = time_or_null(row, kStateNextChange);
    out.scored_at = time_or_null(row, kStateScoredAt).value_or(0);
}

void encode_results(const NewState& ns, const std::string& summary_bytes, Timestamp as_of, StateDatums& out) {
    set(out, kStateScore, points_datum(ns.result.score));
    set(out, kStateFitScore, points_datum(ns.result.fit));
    set(out, kStateEngagementScore, points_datum(ns.result.engagement));
    set(out, kStateStage, ns.result.stage ? text_datum(*ns.result.stage) : (Datum)0, !ns.result.stage);
    set(out, kStateDisqualified, BoolGetDatum(ns.result.disqualified));
    set(out, kStateFitDisqualified, BoolGetDatum(ns.fit_disqualified));
    set(out, kStateStageSince, ns.stage_since ? TimestampTzGetDatum(*ns.stage_since) : (Datum)0, !ns.stage_since);
    set(out, kStateScoredAt, TimestampTzGetDatum(as_of));
    set(out, kStateNextChange, ns.result.next_change ? TimestampTzGetDatum(*ns.result.next_change) : (Datum)0,
        !ns.result.next_change);
    const std::size_t pad = summary_padding(summary_bytes.size());
    bytea* b = static_cast<bytea*>(palloc(VARHDRSZ + pad + summary_bytes.size()));
    SET_VARSIZE(b, VARHDRSZ + pad + summary_bytes.size());
    memset(VARDATA(b), 0, pad);
    memcpy(VARDATA(b) + pad, summary_bytes.data(), summary_bytes.size());
    set(out, kStateSummary, PointerGetDatum(b));
}

void resolve_state_attnums(Relation rel, Oid key_type, std::vector<std::int16_t>& cache) {
    if (cache.size() == kStateColumnCount) return;
    std::int16_t found[kStateColumnCount];
    for (int c = 0; c < kStateColumnCount; c++) {
        const StateColumnDef& def = kColumns[c];
        const AttrNumber a = get_attnum(RelationGetRelid(rel), def.name);
        const Oid expected = OidIsValid(def.type) ? def.type : key_type;
        if (a == InvalidAttrNumber || TupleDescAttr(RelationGetDescr(rel), a - 1)->atttypid != expected)
            ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                            errmsg("leadscore: state table \"%s\" has no column \"%s\" of type %s",
                                   RelationGetRelationName(rel), def.name, format_type_be(expected)),
                            errhint("Run leadscore.untrack() and leadscore.track() again.")));
        found[c] = a;
    }
    cache.assign(found, found + kStateColumnCount);
}

}  // namespace leadscore::pg
