# Stand-in for python:3.11-slim, on a Debian bookworm root made by debootstrap and imported with
# `docker import` (bench/compose_check.sh does both): Python 3.11 as /usr/local/bin/python with
# pip, as in the official image (a venv at /usr/local: Debian's own python3 refuses pip installs).
ARG ROOT_IMAGE=nerqueue-standin/bookworm-root:latest
FROM ${ROOT_IMAGE}
ENV LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
# No service starts while a package installs (there is no init in a container).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && python3 -m venv /usr/local \
 && /usr/local/bin/python -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version" \
 && /usr/local/bin/pip --version
CMD ["python3"]
