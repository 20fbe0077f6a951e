"""HTML pages, pure text in, text out: decoding them as browsers do (:mod:`.encoding`),
finding their real tags (:mod:`.tokens`) and resolving their URLs (:mod:`.urls`),
scanning them before a build (:mod:`.scan`), and the surgical rewrite (:mod:`.rewrite`)
of their ``<img>`` tags (:mod:`.responsive`, :mod:`.dimensions`) and ``<head>``
(:mod:`.meta`), as edits that keep every other byte (:mod:`.edits`)."""
