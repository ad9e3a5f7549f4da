"""Avro schemas (``avro/*.avsc``, older versions in ``avro/history``) and the single-object codec."""

from .codec import AvroCodec, BadMarker, CodecError, TruncatedBody, UnknownFingerprint, WrongRecordType, history_schema, schema

__all__ = ["AvroCodec", "BadMarker", "CodecError", "TruncatedBody", "UnknownFingerprint", "WrongRecordType",
           "history_schema", "schema"]
