"""The embedded demo project: a synthetic abdominal CT phantom and the MNI152 brain MRI."""
