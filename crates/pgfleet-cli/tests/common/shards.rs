//! Shared pieces of the sharding tests: the config line of a single-server shard cluster, a
//! hash-partitioned helper table for PostgreSQL's own placement check, and that check.

use pgfleet_testkit::Cluster;

/// `servers = [...]` for a cluster of one primary.
pub fn primary_servers(c: &Cluster) -> String {
    format!(
        "servers = [{{ host = \"127.0.0.1\", port = {}, role = \"primary\" }}]",
        c.port()
    )
}

/// `hp`, hash-partitioned over 3 partitions like a 3-shard database: `satisfies_hash_partition`
/// on it says which shard PostgreSQL's hash partitioning puts a bigint in.
pub const HASH_PARTITIONS_3: &str = "
    CREATE TABLE hp(id bigint) PARTITION BY HASH (id);
    CREATE TABLE hp0 PARTITION OF hp FOR VALUES WITH (MODULUS 3, REMAINDER 0);
    CREATE TABLE hp1 PARTITION OF hp FOR VALUES WITH (MODULUS 3, REMAINDER 1);
    CREATE TABLE hp2 PARTITION OF hp FOR VALUES WITH (MODULUS 3, REMAINDER 2);";

/// Rows of `items` matching `filter` on shard `shard` whose hash partition is another shard's,
/// and how many rows match there.
pub fn misplaced_and_count(shards: &[Cluster], shard: usize, filter: &str) -> (i64, i64) {
    let out = shards[shard]
        .psql_db(
            "app",
            &format!(
                "SELECT count(*) FILTER (WHERE NOT satisfies_hash_partition('hp'::regclass, 3, {shard}, id)), count(*) FROM items WHERE {filter}"
            ),
        )
        .unwrap();
    let (a, b) = out.trim().split_once('|').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}
