/**
 * The rows of the bench table and keys of bench/out/results.json, in print order, with the targets of the
 * issues (#2 ingest, #3 replay, #20 which replaced #2's 10x and #3's 3 M/s on one core). docs/benchmark.md § Metrics describes each one (test/e2e/bench.test.ts checks it).
 * `query_<name>_s` rows are added per queries/*.sql file after `duckdb_floor_one_core_events_per_s`.
 */
export interface Metric {
  name: string;
  target?: string;
}

export const METRICS: Metric[] = [
  { name: 'lines' },
  { name: 'file_mb' },
  { name: 'events' },
  { name: 'ingest_s' },
  { name: 'ingest_lines_per_s', target: '>= 500000 (goal 1 M)' },
  { name: 'ingest_mb_per_s' },
  { name: 'ingest_peak_rss_mb', target: '4x/1x ~ 1' },
  { name: 'wc_l_s' },
  { name: 'ingest_vs_wc_l' },
  { name: 'duckdb_read_csv_s' },
  { name: 'ingest_vs_duckdb_read_csv' },
  { name: 'duckdb_regex_s' },
  { name: 'duckdb_regex_peak_rss_mb' },
  { name: 'speedup_vs_duckdb_regex', target: '(#2: >= 10, dropped by #20)' },
  { name: 'duckdb_regex_8cols_s' },
  { name: 'speedup_vs_duckdb_regex_8cols' },
  { name: 'duckdb_copy_s' },
  { name: 'ingest_vs_duckdb_copy' },
  { name: 'ingest_replay_s' },
  { name: 'ingest_replay_lines_per_s', target: 'goal >= 1000000' },
  { name: 'ingest_replay_cpu_s' },
  { name: 'ingest_replay_peak_rss_mb', target: '4x/1x ~ 1' },
  { name: 'ingest_replay_vs_duckdb_regex_8cols', target: '>= 1' },
  { name: 'baseline_ingest_s' },
  { name: 'baseline_ingest_peak_rss_mb' },
  { name: 'old_new_ingest' },
  { name: 'baseline_ingest_replay_s' },
  { name: 'baseline_ingest_replay_lines_per_s' },
  { name: 'baseline_ingest_replay_cpu_s' },
  { name: 'baseline_ingest_replay_peak_rss_mb' },
  { name: 'old_new_ingest_replay', target: '>= 2' },
  { name: 'old_new_ingest_replay_cpu' },
  { name: 'replay_s' },
  { name: 'replay_events_per_s', target: '(#3 asks it on one core)' },
  { name: 'replay_cpu_s' },
  { name: 'replay_main_cpu_s' },
  { name: 'replay_events_per_main_cpu_s' },
  { name: 'replay_peak_rss_mb', target: '4x/1x ~ 1 (pages alive)' },
  { name: 'duckdb_stream_s' },
  { name: 'duckdb_stream_events_per_s' },
  { name: 'replay_vs_duckdb_stream' },
  { name: 'replay_one_core_s' },
  { name: 'replay_one_core_events_per_s', target: '(#3: >= 3000000, dropped by #20)' },
  { name: 'duckdb_stream_one_core_s' },
  { name: 'duckdb_store_one_core_s' },
  { name: 'duckdb_floor_one_core_events_per_s', target: 'bounds the one above' },
  { name: 'queries_total_s' },
  { name: 'queries_peak_rss_mb' },
  { name: 'report_s' },
  { name: 'report_peak_rss_mb' },
];

/** Where the per-query rows go. */
export const QUERIES_AFTER = 'duckdb_floor_one_core_events_per_s';

/** Start-up of the built CLI on trivial commands, measured once per run (they do not depend on the input). */
export const STARTUP: (Metric & { args: string[] })[] = [
  { name: 'startup_version_s', args: ['--version'], target: '< 0.5' },
  { name: 'startup_query_list_s', args: ['query', '--list'], target: '< 0.5' },
  { name: 'startup_query_summary_s', args: ['query', 'summary', '--db', '$TINY_DB'], target: '< 0.5' },
];

/**
 * The columns of the binary table (bench/binary.ts): one row per trace.dat / perf.data capture, measured once per
 * run (the captures have one size).
 */
export const BINARY: Metric[] = [
  { name: 'binary_mb' },
  { name: 'binary_events' },
  { name: 'binary_ingest_s' },
  { name: 'binary_events_per_s', target: 'goal >= 3000000' },
  { name: 'binary_peak_rss_mb' },
  { name: 'render_s' },
  { name: 'text_events' },
  { name: 'text_ingest_s' },
  { name: 'text_route_s' },
  { name: 'binary_vs_text_route', target: '>= 3' },
];
