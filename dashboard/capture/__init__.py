"""Capturing the log when the integration keeps none: the relay and the Pixel mirror.

`relay` forwards Conversions API calls to Meta and logs them in log format v1;
`scrub` decides what of a call may be kept on disk; `pixel-mirror.js` mirrors the
page's fbq calls to the relay.
"""
