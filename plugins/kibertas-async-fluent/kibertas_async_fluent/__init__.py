"""kibertas-async plugin: the ``fluent`` check, and a sandbox with S3 (moto) and a stand-in log shipper.

Modules: :mod:`.check` (the check and its options), :mod:`.s3` (the only module that imports
``aioboto3``, loaded when the check runs), :mod:`.sandbox` (the sandbox add-on), :mod:`.shipper` (the
stand-in for fluentd that the add-on runs) and :mod:`.declared` (what a pod declares it prints).
"""

__version__ = "0.1.0"
