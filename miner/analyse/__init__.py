"""Stage 2, read and detect: a commit's tree from git objects, sources (files and notebook cells), the parser sandbox, the pipeline; the pure detector in detect/."""
