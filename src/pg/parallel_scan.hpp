// A full read of the activity table by several processes (rescore(), track(), analytics over
// every lead): PostgreSQL's parallel workers each match a share of the table's blocks into
// partial summaries, which the leader merges (a summary is a multiset: the merge is exact).
#pragma once

#include <map>
#include <string>

#include "pg/matching.hpp"

namespace leadscore::pg {

// Adds every lead's occurrences to out when the table can be read in parallel: a plain,
// permanent heap table without inheritance children or row security, that the user may SELECT,
// at least min_parallel_table_scan_size large, conditions whose functions are parallel safe,
// max_parallel_workers_per_gather > 0, not inside a parallel operation or on Citus. false,
// with nothing read, otherwise (the caller reads through SQL). facts: the leads' facts when
// activity rules read the lead.
bool collect_activities_in_parallel(const CompiledModel& cm, const LeadFactsMap* facts,
                                    std::map<std::string, Summary>& out);

}  // namespace leadscore::pg
