// Settings (GUCs) of the extension.
#pragma once

namespace leadscore::pg {
// leadscore.batch_occurrences: occurrences a statement gathers before applying them.
extern int batch_occurrences;
}  // namespace leadscore::pg
