import sys
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import engines
c = engines.CitusCluster()
try:
    c.start()
    with c.connect() as conn:
        for name in ["citus.node_conninfo","ssl","citus.shard_count","citus.recover_2pc_interval","max_prepared_transactions",
                     "citus.multi_shard_modify_mode","citus.node_connection_timeout","citus.max_adaptive_executor_pool_size",
                     "citus.max_shared_pool_size","citus.max_cached_conns_per_worker","citus.propagate_set_commands",
                     "citus.use_citus_managed_tables","citus.enable_repartition_joins","citus.local_table_join_policy",
                     "citus.defer_drop_after_time","citus.enable_ddl_propagation","citus.max_intermediate_result_size",
                     "citus.enable_non_colocated_router_query_pushdown","citus.create_object_propagation","citus.enable_schema_based_sharding"]:
            try:
                print(name, "=", conn.execute(f"SHOW {name}").fetchone()[0])
            except Exception as e:
                print(name, "ERR", e)
        print(conn.execute("SELECT name, setting FROM pg_settings WHERE name ILIKE '%2pc%' OR name ILIKE '%two%phase%' OR name ILIKE 'citus.%commit%'").fetchall())
        print(conn.execute("select citus_version()").fetchone())
        print(conn.execute("select * from pg_dist_node_metadata").fetchall())
finally:
    c.destroy()
