"""Building a site: the cache, the work for one image, the worker pool that survives its
workers, the image pipeline, and the whole-site build (images, then pages, then site files)."""
