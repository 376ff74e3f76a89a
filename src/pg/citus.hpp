// Citus, found at run time (no build or package dependency): how a tracked table is
// distributed, which shard a live trigger fires on, the co-located shards on this node, and
// the copy of a model's rules every node reads (leadscore.cluster_model, a reference table).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "pg/boundary.hpp"

namespace leadscore::pg::citus {

// Whether the citus extension is installed in this database.
bool loaded();

// A hash-distributed table: its distribution column and co-location group.
struct Distribution {
    std::string column;
    std::int64_t colocation = 0;
};
// nullopt when Citus is absent or the table is not hash-distributed. Needs SPI.
std::optional<Distribution> distribution_of(Oid relid);
// Whether the table is a Citus reference table. Needs SPI.
bool is_reference_table(Oid relid);

// The shard a relation is (the relation a live trigger fires on): its distributed table and
// hash range. nullopt for any other relation. Cached per relation (SPI only to fill the cache).
struct Shard {
    Oid logical = InvalidOid;
    std::int64_t id = 0;
    std::string min_value;
};
std::optional<Shard> shard_of(Oid relid);
// The shard of another table of the same co-location group that covers the same hash range
// (on this node): its unqualified name in the table's schema. Needs SPI.
std::string colocated_shard_name(Oid logical, const Shard& shard);

// The stage history table of a distributed model with this state table (unqualified, in
// schema leadscore; distributed and co-located like the state table).
std::string history_table_of(const std::string& state_table);

// Lets CREATE / DROP TRIGGER on distributed tables through for the rest of the transaction
// (Citus then creates them on every shard). Needs SPI.
void allow_triggers();

// track() on distributed tables: checks that the activities (and leads) are distributed by the
// lead key and co-located, and that the model uses nothing a node could not read. Needs SPI.
// (Logical-replication triggers do not apply there: replica is ignored.)
void check_trackable(const std::string& model, Oid activities, const std::string& lead_column, Oid leads,
                     const std::optional<std::string>& lead_key);
// Creates the model's state table (unqualified name; with the given fillfactor) and history
// table, distributed and co-located with the activities. Needs SPI.
void create_distributed_tables(const std::string& model, const std::string& state_table, const std::string& key_type,
                               const std::string& activities_name, int fill_factor);
// Points leadscore.distributed_state and distributed_history at the distributed models'
// tables (none: the empty definitions). Needs SPI.
void sync_views();

// Creates leadscore.cluster_model (a reference table) when missing. Needs SPI.
void ensure_cluster_model();
// Writes a tracked model's rules, stages, lists and tracking into leadscore.cluster_model, in
// the caller's transaction (every node's placement, two-phase commit). Needs SPI.
void publish_model(const std::string& model);
// Removes a model's copy. Needs SPI.
void unpublish_model(const std::string& model);
// The model's copy as JSON text (nullopt: none), and the local placement of
// leadscore.cluster_model whose change must drop cached models. Needs SPI.
std::optional<std::string> published_model(const std::string& model, Oid* placement);

}  // namespace leadscore::pg::citus
