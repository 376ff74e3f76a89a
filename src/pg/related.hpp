// Related records: the triggers a model's relations put on their target tables.
#pragma once

#include <string>

namespace leadscore::pg {

// Puts (or, with drop_all, removes) the triggers on the target tables of a tracked model's
// relations so that they match leadscore.relation. Needs SPI; nothing when not tracked.
void sync_relation_triggers(const std::string& model, bool drop_all = false);

}  // namespace leadscore::pg
