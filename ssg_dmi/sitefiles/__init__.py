"""The site-level opt-out files: ``ai.txt``, ``robots.txt``, ``tdmrep.json`` and the web
servers' header configs, rendered from the policy, and the one writer that puts them in a site."""
