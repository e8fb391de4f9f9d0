#!/usr/bin/env python3
"""The Azure tests' hands on an Azurite blob server (the emulator's well-known account):

    azure_blobs.py create ENDPOINT CONTAINER
    azure_blobs.py upload ENDPOINT CONTAINER PREFIX FILE...    each FILE as PREFIX/NAME
    azure_blobs.py download ENDPOINT CONTAINER PREFIX FOLDER   every blob under PREFIX/

ENDPOINT is the blob service, http://127.0.0.1:PORT. Needs `azure-storage-blob`.
"""

import os
import sys

from azure.storage.blob import BlobServiceClient

# Azurite's development account, public by design (the emulator's documented defaults).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def container(endpoint, name):
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )
    return BlobServiceClient.from_connection_string(connection).get_container_client(name)


def main():
    command, endpoint, name = sys.argv[1:4]
    blobs = container(endpoint, name)
    if command == "create":
        blobs.create_container()
    elif command == "upload":
        prefix, files = sys.argv[4], sys.argv[5:]
        for file in files:
            with open(file, "rb") as data:
                blobs.upload_blob(f"{prefix}/{os.path.basename(file)}", data, overwrite=True)
    elif command == "download":
        prefix, folder = sys.argv[4].rstrip("/") + "/", sys.argv[5]
        for blob in blobs.list_blobs(name_starts_with=prefix):
            path = os.path.join(folder, blob.name[len(prefix):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(blobs.download_blob(blob.name).readall())
    else:
        sys.exit(f"azure_blobs.py: unknown command {command}")


if __name__ == "__main__":
    main()
