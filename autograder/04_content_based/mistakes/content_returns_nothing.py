# Does nothing at all: no answer may earn a property test's point without attempting the task.
def content_vectors(items, vocabularies):
    return None
