"""The ssg-dmi demo: a real Pelican site. Build: pelican content (from this folder)."""

AUTHOR = "Example Photographer"
SITENAME = "ssg-dmi demo (Pelican)"
SITEURL = "https://example.org"
RELATIVE_URLS = True
PATH = "content"
STATIC_PATHS = ["images"]
ARTICLE_EXCLUDES = ["images"]
PAGE_EXCLUDES = ["images"]
TIMEZONE = "Europe/Paris"
DEFAULT_LANG = "en"
DEFAULT_DATE_FORMAT = "%Y-%m-%d"
FEED_ALL_ATOM = "feeds/all.atom.xml"
CATEGORY_FEED_ATOM = None
TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
LINKS = ()
SOCIAL = ()
DEFAULT_PAGINATION = False

PLUGINS = ["ssg_dmi.pelican"]
# The policy lives in one file, shared with the MkDocs site and `ssg-dmi check`;
# keys given here would override it.
SSG_DMI = {"config_file": "../ssg-dmi.toml"}
