"""Label Studio: the local server, annotation projects, conversion of our records to tasks and
predictions and of annotations back to labels. Label Studio JSON never leaves this package."""
