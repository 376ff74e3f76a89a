// Citus: a write through the coordinator fires live triggers on the shards, which record
// their stage changes notify_pending (a node's part of a two-phase commit cannot NOTIFY) and
// say so with a WARNING of their own SQLSTATE. Citus relays a node's messages to the session
// that ran the statement; there this module swallows the WARNING and, just before the
// transaction commits, sends the waiting changes (visible to it then, over the connections
// that wrote them). Citus relays no messages of a COPY: a COPY always looks.
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "pg/commit_notify.hpp"
#include "pg/datum.hpp"
#include "pg/model_cache.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "access/parallel.h"
#include "access/xact.h"
#include "commands/extension.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
}

namespace leadscore::pg {

bool notify_on_commit = true;

namespace {

const int kPendingSqlState = MAKE_SQLSTATE('L', 'S', 'P', 'N', 'D');

const char kSignalPrefix[] = "leadscore: stage changes recorded on a Citus shard wait to be notified ";

emit_log_hook_type previous_emit_log = nullptr;
ProcessUtility_hook_type previous_process_utility = nullptr;
// The leads of this transaction whose stage changes a shard recorded, by model; and whether
// some may have been recorded without saying which (a COPY, an unreadable signal).
std::map<std::string, std::set<std::string>>& waiting_leads() {
    static auto& leads = *new std::map<std::string, std::set<std::string>>();
    return leads;
}
bool look_everywhere = false;
// This backend is sending its own signal to the node it serves: let it through.
bool relaying_own_signal = false;

// Reads a JSON string at text[i] (as json_string writes them); false when there is none.
bool read_json_string(const std::string& text, std::size_t& i, std::string& out) {
    if (i >= text.size() || text[i] != '"') return false;
    out.clear();
    for (i++; i < text.size(); i++) {
        char c = text[i];
        if (c == '"') {
            i++;
            return true;
        }
        if (c != '\\') {
            out += c;
            continue;
        }
        if (++i >= text.size()) return false;
        switch (text[i]) {
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u':
                if (i + 4 >= text.size()) return false;
                out += static_cast<char>(std::stoi(text.substr(i + 1, 4), nullptr, 16));
                i += 4;
                break;
            default: out += text[i];
        }
    }
    return false;
}

// The signal's {"model": ..., "leads": [...]}, after its prefix.
bool read_signal(const std::string& message) {
    const std::size_t at = message.find(kSignalPrefix);
    if (at == std::string::npos) return false;
    std::size_t i = at + sizeof(kSignalPrefix) - 1;
    std::string model, key;
    auto expect = [&](const std::string& token) {
        if (message.compare(i, token.size(), token) != 0) return false;
        i += token.size();
        return true;
    };
    if (!expect("{\"model\":") || !read_json_string(message, i, model) || !expect(",\"leads\":[")) return false;
    std::vector<std::string> keys;
    while (i < message.size() && message[i] != ']') {
        if (!keys.empty() && !expect(",")) return false;
        if (!read_json_string(message, i, key)) return false;
        keys.push_back(key);
    }
    if (!expect("]}")) return false;
    waiting_leads()[model].insert(keys.begin(), keys.end());
    return true;
}

// Sees the signal: this node's own, which goes to the node it serves but not to the log, and
// a node's, which Citus reports again here with its SQLSTATE (a WARNING: PostgreSQL calls this
// hook only for messages that would reach the server log).
void emit_log(ErrorData* edata) {
    if (edata->sqlerrcode == kPendingSqlState && edata->elevel == WARNING) {
        edata->output_to_server = false;
        if (!relaying_own_signal) {
            edata->output_to_client = false;
            try {
                if (!edata->message || !read_signal(edata->message)) look_everywhere = true;
            } catch (...) {
                look_everywhere = true;
            }
        }
        return;
    }
    if (previous_emit_log) previous_emit_log(edata);
}

void process_utility(PlannedStmt* pstmt, const char* query_string, bool read_only_tree, ProcessUtilityContext context,
                     ParamListInfo params, QueryEnvironment* query_env, DestReceiver* dest, QueryCompletion* qc) {
    if (IsA(pstmt->utilityStmt, CopyStmt) && reinterpret_cast<const CopyStmt*>(pstmt->utilityStmt)->is_from)
        look_everywhere = true;
    if (previous_process_utility)
        previous_process_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
}

void send_waiting_changes() {
    SpiConnection spi;
    // Only on the coordinator (group 0), where listeners connect; only distributed models.
    const std::uint64_t n = spi_exec(
        "SELECT t.model FROM leadscore.tracking t WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p "
        "WHERE p.logicalrelid = t.activities) AND (SELECT groupid FROM pg_catalog.pg_dist_local_group) = 0 "
        "ORDER BY t.model",
        {}, false);
    std::vector<std::string> models;
    for (std::uint64_t i = 0; i < n; i++) models.push_back(*spi_text(i, 1));
    // (Moved out first: the queries below may relay signals of their own.)
    std::map<std::string, std::set<std::string>> leads;
    leads.swap(waiting_leads());
    const bool everywhere = look_everywhere;
    look_everywhere = false;
    for (const std::string& m : models) {
        StateStore store(*get_model(m, true));
        if (everywhere) {
            store.notify_pending_changes(true);
        } else if (auto it = leads.find(m); it != leads.end()) {
            // Only the shards of these leads, which this transaction wrote already.
            const std::vector<std::string> keys(it->second.begin(), it->second.end());
            store.notify_pending_changes(false, &keys);
        }
    }
}

void send_at_commit() {
    bool installed = false;
    pg_guard([&] {
        installed = OidIsValid(get_extension_oid("citus", true)) && OidIsValid(get_extension_oid("leadscore", true));
    });
    if (!installed) return;
    // No portal at commit: the queries run on a snapshot of their own.
    pg_guard([] { PushActiveSnapshot(GetTransactionSnapshot()); });
    try {
        send_waiting_changes();
    } catch (...) {
        pg_guard([] { PopActiveSnapshot(); });
        throw;
    }
    pg_guard([] { PopActiveSnapshot(); });
}

void forget_waiting() {
    waiting_leads().clear();
    look_everywhere = false;
}

void xact_callback(XactEvent event, void*) {
    if (event != XACT_EVENT_PRE_COMMIT) {
        // Committed, aborted, or prepared by the user: what waits stays for notify_stage_changes().
        if (event != XACT_EVENT_PRE_PREPARE && event != XACT_EVENT_PARALLEL_PRE_COMMIT)
            cxx_guard(WARNING, [] { forget_waiting(); });
        return;
    }
    if ((waiting_leads().empty() && !look_everywhere) || IsInParallelMode()) return;
    if (!notify_on_commit) return cxx_guard(WARNING, [] { forget_waiting(); });
    // An error here aborts the commit: the changes and their notifications stay together.
    cxx_guard(ERROR, [] { send_at_commit(); });
}

}  // namespace

void signal_changes_waiting(const std::string& model, const std::vector<std::string>& keys) {
    // A Citus node serving another node's statement (its connections are named so) tells that
    // node; a session scoring its own statement's shards (local execution) notes them.
    bool serving_another_node = false;
    pg_guard([&] {
        const char* name = GetConfigOption("application_name", true, false);
        serving_another_node = name && std::strncmp(name, "citus_internal gpid=", 20) == 0;
    });
    if (!serving_another_node) {
        waiting_leads()[model].insert(keys.begin(), keys.end());
        return;
    }
    std::string message = std::string(kSignalPrefix) + "{\"model\":" + json_string(model) + ",\"leads\":[";
    for (std::size_t i = 0; i < keys.size(); i++) message += (i ? "," : "") + json_string(keys[i]);
    message += "]}";
    relaying_own_signal = true;
    pg_guard([&] {
        ereport(WARNING, (errcode(kPendingSqlState), errmsg("%s", message.c_str()),
                          errhint("Load leadscore in the coordinator's sessions (session_preload_libraries) to notify "
                                  "them at commit, or run leadscore.notify_stage_changes().")));
    });
    relaying_own_signal = false;
}

void register_commit_notify() {
    previous_emit_log = emit_log_hook;
    emit_log_hook = emit_log;
    previous_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = process_utility;
    RegisterXactCallback(xact_callback, nullptr);
}

}  // namespace leadscore::pg
