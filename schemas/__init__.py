"""Avro schemas (``avro/*.avsc``, older versions in ``avro/history``) and the single-object codec."""

from .codec import (AvroCodec, BadMarker, CodecError, TruncatedBody, UnknownFingerprint, WrongRecordType, codec_for, encode_body,
                    decode_any, history_schema, record_type, schema, schema_fingerprint, writer_schemas)

__all__ = ["AvroCodec", "BadMarker", "CodecError", "TruncatedBody", "UnknownFingerprint", "WrongRecordType", "codec_for",
           "decode_any", "history_schema", "record_type", "schema", "encode_body", "schema_fingerprint", "writer_schemas"]
