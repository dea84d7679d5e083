"""Stage 1, enumerate and clone: GitHub topic enumeration, crawl planning, safe partial clones, targets typed by the user."""
