"""The Apache rewriter: discover, read (Augeas), plan (pure), apply (safely)."""


def install_lineage(*args, **kwargs):
    """See lehttpd.apache.operations.install_lineage (imported lazily to keep `import lehttpd.apache` cheap)."""
    from lehttpd.apache.operations import install_lineage as run

    return run(*args, **kwargs)
