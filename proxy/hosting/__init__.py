"""Image hosting: generated images uploaded to sm.ms, PicGo/Chevereto or Cloudflare ImgBed, with
the cache keeping only the hosted URL (a KV entry) once an upload succeeds. One uploader a host
behind ``base.Uploader``, chosen by ``registry``; ``stage`` is where hosting meets the image route
(and, in proxy mode, fetches the host's copy through ``proxy.upstream.guarded``)."""
