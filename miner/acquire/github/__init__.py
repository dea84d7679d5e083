"""GitHub edge, split by job: `client` sends requests (tokens, rate limits, retries), `slices`
cuts a search into creation-date slices under the 1,000-result cap, `queries` writes and reads the
`created:` qualifier, `topics` enumerates a topic with both, `repositories` holds what a search
item says about a repository and reads a branch head, and `errors` says which faults may pass.

Nothing is re-exported here: `client.sleep` and `client.clock` are swapped by tests and benchmarks,
and a re-exported copy would silently not be the one the client looks up.
"""
