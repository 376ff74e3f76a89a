// Citus: the notifications of stage changes scored on the shards, sent when the coordinator's
// transaction that caused them commits (leadscore.notify_on_commit; leadscore must be loaded
// in that session: session_preload_libraries or shared_preload_libraries).
#pragma once

#include <string>
#include <vector>

namespace leadscore::pg {

// leadscore.notify_on_commit.
extern bool notify_on_commit;

// On a shard: tells the session that ran the statement (through Citus's relay of a node's
// messages) that these leads' stage changes wait to be notified.
void signal_changes_waiting(const std::string& model, const std::vector<std::string>& keys);

// Installs the message and utility hooks that notice waiting changes, and the pre-commit
// callback that sends them. From _PG_init.
void register_commit_notify();

}  // namespace leadscore::pg
