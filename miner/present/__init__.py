"""Stage 4, query and present (stage 3, the store, is the top-level schema package): statistics, exports, charts, the report, the read API and the dashboard, evaluation against a labelled corpus."""
