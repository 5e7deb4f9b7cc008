"""The corpus layer shared by ``litllm prepare`` and training: the prepared format and the input readers.

``format`` defines a prepared directory (manifest schema, shard names, the token dtype rule);
``readers`` turns a data source (a built-in corpus, files, directories, globs, a ``datasets``
dataset) into documents. Neither imports torch or Lightning, so that ``litllm prepare`` and its
worker processes start without them.
"""
